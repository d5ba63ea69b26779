/** Range checks for strategy hyperparameters, so a bad option fails at start-up, not mid-run. */
import { CohortError } from '../errors';

/**
 * Returns `value` if it is a finite number above `min` (or equal when `minInclusive`) and
 * below `maxExclusive`; CONFIG_INVALID naming the strategy and option otherwise.
 */
export function requireInRange(
  strategy: string,
  option: string,
  value: number,
  min: number,
  minInclusive: boolean,
  maxExclusive = Number.POSITIVE_INFINITY,
): number {
  const aboveMin = minInclusive ? value >= min : value > min;
  // Number.isFinite is false for every non-number (a string would pass the comparisons).
  if (!Number.isFinite(value) || !aboveMin || value >= maxExclusive) {
    const low = `${minInclusive ? '[' : '('}${min}`;
    const high = Number.isFinite(maxExclusive) ? `${maxExclusive})` : 'inf)';
    throw new CohortError(
      'CONFIG_INVALID',
      `${strategy} ${option} must be in ${low}, ${high}, got ${value}`,
    );
  }
  return value;
}
