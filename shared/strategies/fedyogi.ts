/**
 * FedYogi (Reddi et al. 2021): Yogi on the server. Its additive second-moment update grows v
 * more slowly than Adam's average, which keeps the effective step from collapsing after one
 * large update — often steadier on heterogeneous clients.
 */
import type { AdaptiveOptions } from './adaptive-server-optimizer';
import { createAdaptiveStrategy } from './adaptive-server-optimizer';
import type { Strategy } from './strategy';

/** Yogi's second moment: v - (1 - beta2) * d^2 * sign(v - d^2). */
export function yogiSecondMoment(previous: number, squaredDelta: number, beta2: number): number {
  return previous - (1 - beta2) * squaredDelta * Math.sign(previous - squaredDelta);
}

/** FedYogi with the given server hyperparameters (see STRATEGY_DEFAULTS for defaults). */
export function createFedYogi(options: AdaptiveOptions): Strategy {
  return createAdaptiveStrategy('fedyogi', options, yogiSecondMoment);
}
