/**
 * The server-side adaptive update shared by FedAdam and FedYogi (Reddi et al. 2021,
 * Algorithm 2): the averaged client update is treated as a pseudo-gradient and fed to an
 * Adam-style optimizer on the server. Only the second-moment rule differs between the two.
 */
import type { AggregateFitInput, AggregateFitResult, FitConfig, Strategy } from './strategy';
import { checkAggregateInput, copyFitConfig } from './strategy';
import { requireInRange } from './hyperparameters';

/** Hyperparameters of the adaptive server optimizers. */
export interface AdaptiveOptions {
  serverLr: number;
  beta1: number;
  beta2: number;
  tau: number;
}

/** v_t from v_{t-1} and the squared update; the only line where FedAdam and FedYogi differ. */
export type SecondMomentRule = (previous: number, squaredDelta: number, beta2: number) => number;

/**
 * m_t = beta1 m + (1 - beta1) delta; v_t = rule(v, delta^2, beta2);
 * w' = w + serverLr * m_t / (sqrt(v_t) + tau), without bias correction, as in the paper.
 * State: [m (model length), v (model length)], m starting at 0 and v at tau^2 (the paper
 * requires v_{-1} >= tau^2).
 */
export function createAdaptiveStrategy(
  name: 'fedadam' | 'fedyogi',
  options: AdaptiveOptions,
  secondMoment: SecondMomentRule,
): Strategy {
  const serverLr = requireInRange(name, 'serverLr', options.serverLr, 0, false);
  const beta1 = requireInRange(name, 'beta1', options.beta1, 0, true, 1);
  const beta2 = requireInRange(name, 'beta2', options.beta2, 0, true, 1);
  const tau = requireInRange(name, 'tau', options.tau, 0, false);
  return {
    name,
    hyperparameters: Object.freeze({ serverLr, beta1, beta2, tau }),
    configureFit: (base: FitConfig): FitConfig => copyFitConfig(base),
    initialState: (modelLength: number): Float32Array => {
      const state = new Float32Array(2 * modelLength);
      state.fill(tau * tau, modelLength);
      return state;
    },
    aggregateFit: (input: AggregateFitInput, state: Float32Array): AggregateFitResult => {
      const { global, meanDelta } = input;
      const n = global.length;
      checkAggregateInput(input, state, 2 * n);
      const weights = new Float32Array(n);
      const next = new Float32Array(2 * n);
      for (let i = 0; i < n; i++) {
        const delta = meanDelta[i]!;
        const m = beta1 * state[i]! + (1 - beta1) * delta;
        const v = secondMoment(state[n + i]!, delta * delta, beta2);
        next[i] = m;
        next[n + i] = v;
        weights[i] = global[i]! + (serverLr * m) / (Math.sqrt(v) + tau);
      }
      return { weights, state: next };
    },
  };
}
