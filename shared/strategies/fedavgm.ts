/**
 * FedAvgM (Hsu et al. 2019): server momentum over the averaged update, which damps the
 * oscillation FedAvg shows on non-IID data.
 */
import type { AggregateFitInput, AggregateFitResult, FitConfig, Strategy } from './strategy';
import { checkAggregateInput, copyFitConfig } from './strategy';
import { requireInRange } from './hyperparameters';

/**
 * v' = momentum * v + meanDelta; w' = w + serverLr * v'. State: the velocity v (model length),
 * zero initially.
 */
export function createFedAvgM(options: { serverLr: number; momentum: number }): Strategy {
  const serverLr = requireInRange('fedavgm', 'serverLr', options.serverLr, 0, false);
  const momentum = requireInRange('fedavgm', 'momentum', options.momentum, 0, true, 1);
  return {
    name: 'fedavgm',
    hyperparameters: Object.freeze({ serverLr, momentum }),
    configureFit: (base: FitConfig): FitConfig => copyFitConfig(base),
    initialState: (modelLength: number): Float32Array => new Float32Array(modelLength),
    aggregateFit: (input: AggregateFitInput, state: Float32Array): AggregateFitResult => {
      const { global, meanDelta } = input;
      checkAggregateInput(input, state, global.length);
      const weights = new Float32Array(global.length);
      const velocity = new Float32Array(global.length);
      // Stryker disable next-line EqualityOperator: one more step writes past a typed array's end, a no-op.
      for (let i = 0; i < global.length; i++) {
        const v = momentum * state[i]! + meanDelta[i]!;
        velocity[i] = v;
        weights[i] = global[i]! + serverLr * v;
      }
      return { weights, state: velocity };
    },
  };
}
