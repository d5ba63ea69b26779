/**
 * Seeded pseudo-random numbers. Federated experiments must be reproducible on every client
 * (Node or browser), so nothing here touches `Math.random`: a seed fully determines the
 * stream. The core generator (mulberry32) uses only 32-bit integer arithmetic, which is
 * bit-identical on every JavaScript engine; `normal` and `gamma` additionally use
 * `Math.log`/`Math.sqrt`, whose results engines compute to within an ulp.
 */

/** A deterministic random stream; see {@link createRng}. */
export interface Rng {
  /** Uniform float in [0, 1) with 32 bits of randomness. */
  next(): number;
  /** Uniform integer in [0, n); `n` must be a positive integer below 2^32. */
  int(n: number): number;
  /** Fisher-Yates shuffle of `items` in place; returns the same array for chaining. */
  shuffle<T>(items: T[]): T[];
  /** Standard normal sample (mean 0, variance 1). */
  normal(): number;
  /** Gamma(shape, 1) sample, `shape > 0` (Marsaglia-Tsang). */
  gamma(shape: number): number;
  /** Uniform unsigned 32-bit integer: the raw generator output. */
  uint32(): number;
}

const TWO_POW_32 = 4294967296;

/**
 * Folds any finite number (negative, fractional, above 2^32) into a 32-bit seed, so callers
 * can pass round numbers, client indices or derived values without worrying about range.
 */
export function normalizeSeed(seed: number): number {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be finite, got ${seed}`);
  if (Number.isInteger(seed) && seed >= 0 && seed < TWO_POW_32) return seed >>> 0;
  // Hash the float64 bits so that e.g. 1.5 and 1 give different streams.
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, seed, true);
  return mixSeeds(view.getUint32(0, true), view.getUint32(4, true));
}

/**
 * Combines several seeds into one well-mixed 32-bit seed (e.g. experiment seed + round +
 * client index), so derived streams do not overlap the way `seed + round` would.
 */
export function mixSeeds(...seeds: number[]): number {
  let h = 0x9e3779b9;
  for (const s of seeds) {
    const k = Number.isInteger(s) && s >= 0 && s < TWO_POW_32 ? s >>> 0 : normalizeSeed(s);
    h = Math.imul(h ^ k, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/**
 * A reproducible generator for shuffling, partitioning and weight initialisation; the same
 * seed gives the same sequence on every platform.
 */
export function createRng(seed: number): Rng {
  let state = normalizeSeed(seed);
  let spareNormal: number | undefined;

  const uint32 = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };

  const next = (): number => uint32() / TWO_POW_32;

  const int = (n: number): number => {
    if (!Number.isInteger(n) || n <= 0 || n > TWO_POW_32) {
      throw new RangeError(`int(n) needs a positive integer n <= 2^32, got ${n}`);
    }
    // Rejection sampling removes the modulo bias.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    let x = uint32();
    while (x >= limit) x = uint32();
    return x % n;
  };

  const normal = (): number => {
    if (spareNormal !== undefined) {
      const s = spareNormal;
      spareNormal = undefined;
      return s;
    }
    // Marsaglia polar method: needs only log and sqrt (no trigonometry).
    for (;;) {
      const u = 2 * next() - 1;
      const v = 2 * next() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const factor = Math.sqrt((-2 * Math.log(s)) / s);
        spareNormal = v * factor;
        return u * factor;
      }
    }
  };

  const gamma = (shape: number): number => {
    if (!(shape > 0) || !Number.isFinite(shape)) {
      throw new RangeError(`gamma shape must be a positive finite number, got ${shape}`);
    }
    if (shape < 1) {
      // Boost: Gamma(a) = Gamma(a + 1) * U^(1/a).
      let u = next();
      while (u === 0) u = next();
      return gamma(shape + 1) * Math.pow(u, 1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = next();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (u > 0 && Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  };

  const shuffle = <T>(items: T[]): T[] => {
    for (let i = items.length - 1; i > 0; i--) {
      const j = int(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
    return items;
  };

  return { next, int, shuffle, normal, gamma, uint32 };
}
