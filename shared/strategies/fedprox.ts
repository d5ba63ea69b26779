/**
 * FedProx (Li et al. 2020): clients add (mu/2)||w - w_global||^2 to their loss, which limits
 * client drift on heterogeneous data; the server aggregates exactly as FedAvg.
 */
import { addDelta } from './fedavg';
import { requireInRange } from './hyperparameters';
import type { AggregateFitInput, AggregateFitResult, FitConfig, Strategy } from './strategy';
import { checkAggregateInput } from './strategy';

/** FedProx with proximal weight `proximalMu` (>= 0) sent to every client each round. */
export function createFedProx(options: { proximalMu: number }): Strategy {
  const mu = requireInRange('fedprox', 'proximalMu', options.proximalMu, 0, true);
  return {
    name: 'fedprox',
    hyperparameters: Object.freeze({ proximalMu: mu }),
    configureFit: (base: FitConfig): FitConfig => ({ ...base, proximalMu: mu }),
    initialState: (): Float32Array => new Float32Array(0),
    aggregateFit: (input: AggregateFitInput, state: Float32Array): AggregateFitResult => {
      checkAggregateInput(input, state, 0);
      return { weights: addDelta(input.global, input.meanDelta), state: new Float32Array(0) };
    },
  };
}
