/** FedAvg (McMahan et al. 2017): the next global model is the example-weighted client mean. */
import type { AggregateFitInput, AggregateFitResult, FitConfig, Strategy } from './strategy';
import { checkAggregateInput, copyFitConfig } from './strategy';

/**
 * w' = w + meanDelta, i.e. the weighted mean of the client models. No server state. The
 * client config passes through unchanged (a proximalMu set by the operator is kept).
 */
export function createFedAvg(): Strategy {
  return {
    name: 'fedavg',
    hyperparameters: Object.freeze({}),
    configureFit: (base: FitConfig): FitConfig => copyFitConfig(base),
    initialState: (): Float32Array => new Float32Array(0),
    aggregateFit: (input: AggregateFitInput, state: Float32Array): AggregateFitResult => {
      checkAggregateInput(input, state, 0);
      return { weights: addDelta(input.global, input.meanDelta), state: new Float32Array(0) };
    },
  };
}

/** global + delta as a new array (shared by FedAvg and FedProx, which aggregate alike). */
export function addDelta(global: Float32Array, delta: Float32Array): Float32Array {
  const out = new Float32Array(global.length);
  // Stryker disable next-line EqualityOperator: one more step writes past a typed array's end, a no-op.
  for (let i = 0; i < global.length; i++) out[i] = global[i]! + delta[i]!;
  return out;
}
