import { InvalidArgumentError } from 'commander';

/**
 * Flag parsers for commander: a value out of range is refused at start-up with the flag's
 * name and the accepted range, instead of turning into NaN deep inside a round.
 */
export function integerFlag(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim()))
      throw new InvalidArgumentError(`expected an integer, got "${value}"`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}`);
    return n;
  };
}

/** A finite number in [min, max] (or (min, max] with `exclusiveMin`). */
export function numberFlag(min: number, max: number, exclusiveMin = false) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n))
      throw new InvalidArgumentError(`expected a number, got "${value}"`);
    if (exclusiveMin ? n <= min : n < min) {
      throw new InvalidArgumentError(
        `must be ${exclusiveMin ? 'greater than' : 'at least'} ${min}`,
      );
    }
    if (n > max) throw new InvalidArgumentError(`must be at most ${max}`);
    return n;
  };
}

/** `on` / `off` switches (for flags whose default is on). */
export function onOffFlag(value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new InvalidArgumentError('expected "on" or "off"');
}

/** Seconds on the command line, milliseconds inside. */
export function secondsFlag(value: string): number {
  return Math.round(numberFlag(0, 7 * 24 * 3600, true)(value) * 1000);
}
