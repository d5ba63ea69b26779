/** FedAdam (Reddi et al. 2021): Adam on the server over the averaged client update. */
import type { AdaptiveOptions } from './adaptive-server-optimizer';
import { createAdaptiveStrategy } from './adaptive-server-optimizer';
import type { Strategy } from './strategy';

/** Adam's second moment: an exponential moving average of the squared update. */
export function adamSecondMoment(previous: number, squaredDelta: number, beta2: number): number {
  return beta2 * previous + (1 - beta2) * squaredDelta;
}

/** FedAdam with the given server hyperparameters (see STRATEGY_DEFAULTS for defaults). */
export function createFedAdam(options: AdaptiveOptions): Strategy {
  return createAdaptiveStrategy('fedadam', options, adamSecondMoment);
}
