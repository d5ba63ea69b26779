import type { SecAggConfig } from '../../shared/secagg';
import {
  COMPLETE_GRAPH_MAX_CLIENTS,
  DEFAULT_WEIGHT_CAP,
  MAX_VECTOR_LENGTH,
  assertSafeConfig,
  chooseSecAggParams,
  configHash,
  decodeAggregate,
  derivedScale,
  graphParams,
  quantizeWeightedUpdate,
} from '../../shared/secagg';

const INT32_MAX = 2 ** 31 - 1;

describe('secure-aggregation parameters', () => {
  it('chooses the finest power-of-two scale that cannot overflow', () => {
    const config = chooseSecAggParams(10, { vectorLength: 100, clipRange: 1 });
    expect(config).toMatchObject({ modulusBits: 32, maxClients: 10 });
    expect(config.weightCap).toBe(DEFAULT_WEIGHT_CAP);
    expect(Math.log2(config.scale) % 1).toBe(0);
    expect(10 * (config.clipRange * config.weightCap * config.scale + 1)).toBeLessThanOrEqual(
      INT32_MAX,
    );
    expect(10 * (config.clipRange * config.weightCap * config.scale * 2 + 1)).toBeGreaterThan(
      INT32_MAX,
    );
    expect(Object.isFrozen(config)).toBe(true);
    expect(derivedScale(10, 1, DEFAULT_WEIGHT_CAP)).toBe(config.scale);
  });

  it('derives k and t from the participant count: complete graph up to 100, then SecAgg+', () => {
    // Hand-checked: t = max(3, ceil(2m/3)) for m = k + 1 holders; colluders c < 2t - m.
    expect(graphParams(3)).toMatchObject({ neighbours: 2, complete: true, threshold: 3 });
    expect(graphParams(4)).toMatchObject({ neighbours: 3, threshold: 3, maxColluders: 1 });
    expect(graphParams(5)).toMatchObject({ neighbours: 4, threshold: 4, maxColluders: 2 });
    expect(graphParams(10)).toMatchObject({ neighbours: 9, threshold: 7, maxColluders: 3 });
    expect(graphParams(100)).toMatchObject({ neighbours: 99, threshold: 67, maxColluders: 33 });
    const edge = graphParams(COMPLETE_GRAPH_MAX_CLIENTS + 1);
    expect(edge).toMatchObject({ neighbours: 70, complete: false, holders: 71, threshold: 48 });
    expect(edge.maxColluders).toBe(2 * 48 - 71 - 1);
    expect(graphParams(128)).toMatchObject({ neighbours: 70, threshold: 48 });
    expect(graphParams(1000)).toMatchObject({ neighbours: 100, threshold: 68 });
    expect(graphParams(100_000).neighbours).toBe(170);
    expect(() => graphParams(2)).toThrow(/CONFIG_INVALID/);
  });

  it('every participant count gives a threshold that resists at least one colluder', () => {
    for (let n = 3; n <= 2000; n++) {
      const p = graphParams(n);
      expect(p.holders).toBeLessThanOrEqual(255);
      expect(p.neighbours % 2 === 0 || p.complete).toBe(true);
      expect(2 * p.threshold - p.holders).toBeGreaterThanOrEqual(2);
      expect(p.maxColluders).toBe(2 * p.threshold - p.holders - 1);
      expect(p.threshold).toBeLessThanOrEqual(p.holders);
    }
  });

  it('a worst-case sum at the chosen scale decodes exactly, one scale step finer wraps around', () => {
    const n = 20;
    const config = chooseSecAggParams(n, { vectorLength: 2, clipRange: 1, weightCap: 4096 });
    const sumAt = (c: SecAggConfig): Uint32Array => {
      const sum = new Uint32Array(4);
      for (let k = 0; k < n; k++) {
        const e = quantizeWeightedUpdate(
          { update: new Float32Array([1, -1]), exampleCount: 4096, trainLoss: 1 },
          c,
        );
        for (let i = 0; i < 4; i++) sum[i] = sum[i]! + e[i]!;
      }
      return sum;
    };
    const safe = decodeAggregate(sumAt(config), config, n * 4096);
    expect(Array.from(safe.weightedMean)).toEqual([1, -1]);
    expect(safe.meanTrainLoss).toBe(1);
    const unsafe = { ...config, scale: config.scale * 2 };
    expect(() => assertSafeConfig(unsafe)).toThrow(/CONFIG_UNSAFE/);
    const wrapped = decodeAggregate(sumAt(unsafe), unsafe, n * 4096);
    expect(wrapped.weightedMean[0]).not.toBeCloseTo(1, 3); // what the check prevents
  });

  const base = chooseSecAggParams(10, { vectorLength: 100, clipRange: 1, weightCap: 100 });
  it.each([
    // The scale is derived for 32 bits: at 16 or 24 the sum of 10 clients would wrap.
    ['a 16-bit modulus with a scale derived for 32 bits', { modulusBits: 16 }, 'CONFIG_UNSAFE'],
    ['a 24-bit modulus with a scale derived for 32 bits', { modulusBits: 24 }, 'CONFIG_UNSAFE'],
    ['a 20-bit modulus (not byte-aligned)', { modulusBits: 20 }, 'CONFIG_UNSAFE'],
    ['an 8-bit modulus', { modulusBits: 8 }, 'CONFIG_UNSAFE'],
    ['a 64-bit modulus', { modulusBits: 64 }, 'CONFIG_UNSAFE'],
    ['a fractional modulus', { modulusBits: 24.5 }, 'CONFIG_UNSAFE'],
    ['a scale that can overflow', { scale: base.scale * 2 }, 'CONFIG_UNSAFE'],
    ['a coarser scale than the derived one', { scale: base.scale / 2 }, 'CONFIG_UNSAFE'],
    ['a maxClients below 3', { maxClients: 2 }, 'CONFIG_INVALID'],
    ['a fractional vector length', { vectorLength: 1.5 }, 'CONFIG_INVALID'],
    ['a negative clip range', { clipRange: -1 }, 'CONFIG_INVALID'],
  ] as [string, Partial<SecAggConfig>, string][])('refuses %s', (_label, change, code) => {
    expect(() => assertSafeConfig({ ...base, ...change })).toThrow(new RegExp(code));
  });

  it('accepts 16, 24 and 32 bits only, each with the scale derived for that width', () => {
    for (const bits of [16, 24, 32] as const) {
      const config = chooseSecAggParams(10, {
        vectorLength: 100,
        clipRange: 1,
        weightCap: 100,
        modulusBits: bits,
      });
      expect(config.modulusBits).toBe(bits);
      expect(config.scale).toBe(derivedScale(10, 1, 100, bits));
      expect(() => assertSafeConfig(config)).not.toThrow();
      for (const other of [16, 24, 32].filter((b) => b !== bits)) {
        expect(() => assertSafeConfig({ ...config, modulusBits: other })).toThrow(
          new RegExp(`CONFIG_UNSAFE: scale ${config.scale} is not the derived .* ${other}-bit`),
        );
      }
    }
    for (const bits of [0, 8, 15, 17, 20, 23, 25, 31, 33, 40, 64, NaN]) {
      expect(() => assertSafeConfig({ ...base, modulusBits: bits })).toThrow(
        /CONFIG_UNSAFE: secure aggregation needs a modulus of 16, 24, 32 bits/,
      );
    }
    // chooseSecAggParams defaults to 32 bits, and refuses a width no scale fits.
    expect(chooseSecAggParams(10, { vectorLength: 1, clipRange: 1 }).modulusBits).toBe(32);
    expect(() =>
      chooseSecAggParams(3, { vectorLength: 1, clipRange: 1, modulusBits: 20 as 24 }),
    ).toThrow(/CONFIG_UNSAFE: .* modulus of 16, 24, 32 bits/);
  });

  it('derives the scale per width: 2^(b-1) - 1 bounds the sum', () => {
    // Hand-checked: s = 2^floor(log2(((2^(b-1) - 1) / m - 1) / (clip * w))).
    // 16 bits, 3 clients, weight 100: (32767 / 3 - 1) / 100 = 109.2 -> 64; 3 * 6401 = 19203.
    expect(derivedScale(3, 1, 100, 16)).toBe(64);
    // 24 bits, 10 clients, clip 4, weight 16384: (8388607 / 10 - 1) / 65536 = 12.8 -> 8.
    expect(derivedScale(10, 4, DEFAULT_WEIGHT_CAP, 24)).toBe(8);
    // 32 bits is the default and today's value.
    expect(derivedScale(10, 4, DEFAULT_WEIGHT_CAP, 32)).toBe(2048);
    expect(derivedScale(10, 4, DEFAULT_WEIGHT_CAP)).toBe(2048);
    // Equality is allowed at 16 bits too: 1 * ((2^15 - 2) * 1 + 1) = 2^15 - 1.
    expect(derivedScale(1, 1, 2 ** 15 - 2, 16)).toBe(1);
    // 16 bits, 50 clients of weight 1: 50 * 513 = 25650 fits, 512 levels; 200 clients leave
    // 128 levels, too few.
    expect(derivedScale(50, 1, 1, 16)).toBe(512);
    expect(derivedScale(200, 1, 1, 16)).toBe(0);
    for (const bits of [16, 24]) {
      const max = 2 ** (bits - 1) - 1;
      for (const m of [3, 7, 50]) {
        for (const w of [1, 10, 100]) {
          const s = derivedScale(m, 1, w, bits);
          if (s === 0) continue;
          expect(m * (w * s + 1)).toBeLessThanOrEqual(max);
          expect(m * (w * s * 2 + 1)).toBeGreaterThan(max);
        }
      }
    }
  });

  it('refuses a weight sum that does not fit the width', () => {
    // 3 clients of 16384 examples sum to 49152 > 2^15 - 1, although the scale is the derived one.
    const heavy = { ...base, maxClients: 3, weightCap: DEFAULT_WEIGHT_CAP, modulusBits: 16 };
    expect(() =>
      assertSafeConfig({ ...heavy, scale: derivedScale(3, 1, DEFAULT_WEIGHT_CAP, 16) }),
    ).toThrow(/CONFIG_UNSAFE: maxClients \* weightCap must stay below 2\^15 \(a 16-bit modulus\)/);
    expect(() => chooseSecAggParams(3, { vectorLength: 1, clipRange: 4, modulusBits: 16 })).toThrow(
      /CONFIG_UNSAFE: maxClients \* weightCap must stay below 2\^15/,
    );
  });

  it("'auto' picks the narrowest width that keeps 16 levels per example", () => {
    const auto = (n: number, clipRange: number, weightCap?: number) =>
      chooseSecAggParams(n, {
        vectorLength: 1,
        clipRange,
        ...(weightCap !== undefined ? { weightCap } : {}),
        modulusBits: 'auto',
      });
    // The defaults (clip 4, weight cap 16384): the README's table. 16 bits never holds 3
    // clients of 16384 examples; 24 bits does up to 63 clients (scale 2: 16 levels), and at 64
    // the 24-bit scale 1 gives 8 levels, so 32 bits.
    const table = [3, 10, 63, 64, 100, 1000].map((n) => {
      const c = auto(n, 4);
      return [n, c.modulusBits, c.scale];
    });
    expect(table).toEqual([
      [3, 24, 32],
      [10, 24, 8],
      [63, 24, 2],
      [64, 32, 256],
      [100, 32, 256],
      [1000, 32, 32],
    ]);
    // Small weights fit 16 bits: 10 clients of 100, clip 1: scale 32, 64 levels.
    expect(auto(10, 1, 100)).toMatchObject({ modulusBits: 16, scale: 32 });
    // Exactly 16 levels is enough: clip 4, 10 clients of 400 at 16 bits: (32767 / 10 - 1) /
    // 1600 = 2.05 -> scale 2, 2 * 4 * 2 = 16 levels. At 410 the 16-bit scale is 1 (8 levels),
    // so 24 bits: (8388607 / 10 - 1) / 1640 = 511.5 -> 256.
    expect(auto(10, 4, 400)).toMatchObject({ modulusBits: 16, scale: 2 });
    expect(auto(10, 4, 410)).toMatchObject({ modulusBits: 24, scale: 256 });
    // Beyond what 32 bits can hold it still refuses, as before.
    expect(() => auto(10_000_000, 1, 1)).toThrow(/CONFIG_UNSAFE: no scale keeps 256/);
  });

  it('refuses cohorts larger than the overflow bound assumed, and bounds without precision', () => {
    expect(() => assertSafeConfig(base, 11)).toThrow(/CONFIG_UNSAFE/);
    expect(() => chooseSecAggParams(2, { vectorLength: 1, clipRange: 1 })).toThrow(
      /CONFIG_INVALID/,
    );
    // Ten million clients leave no precision at all.
    expect(() => chooseSecAggParams(10_000_000, { vectorLength: 1, clipRange: 1 })).toThrow(
      /CONFIG_UNSAFE/,
    );
  });

  it('hashes every field of the config', () => {
    const hash = configHash(base);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(configHash({ ...base })).toBe(hash);
    for (const key of Object.keys(base) as (keyof SecAggConfig)[]) {
      expect(configHash({ ...base, [key]: base[key] + 1 })).not.toBe(hash);
    }
  });
  it('derives exact scales at the boundaries of the overflow and precision bounds', () => {
    // Hand-checked: s = 2^floor(log2((INT32_MAX / m - 1) / (clip * w))), halved while
    // m * (clip * w * s + 1) > INT32_MAX, and 0 when clip * w * s < 256.
    expect(derivedScale(10, 1, DEFAULT_WEIGHT_CAP)).toBe(8192);
    // 5e6 * (256 + 1) = 1.285e9 fits, 5e6 * (512 + 1) does not; 256 levels are just enough.
    expect(derivedScale(5_000_000, 1, 1)).toBe(256);
    // 1e7 * (128 + 1) fits, but 128 levels are too few.
    expect(derivedScale(10_000_000, 1, 1)).toBe(0);
    // A clip range below one: 10 * (0.5 * 2^28 + 1) = 1342177290 fits, 2^29 does not.
    expect(derivedScale(10, 0.5, 1)).toBe(2 ** 28);
    // The bound holds for any positive weight, fractional ones included.
    expect(derivedScale(10, 1, 0.5)).toBe(2 ** 28);
    // Equality is allowed: 1 * ((2^31 - 2) * 1 + 1) = INT32_MAX exactly.
    expect(derivedScale(1, 1, 2 ** 31 - 2)).toBe(1);
    // From 2^31 clients on, not even a zero scale leaves room: no scale at all.
    expect(derivedScale(2 ** 31, 1, 1)).toBe(0);
    expect(derivedScale(2 ** 32, 1, 1)).toBe(0);
    expect(derivedScale(INT32_MAX, 1, 1)).toBe(0);
  });

  it('halves the scale when log2 rounds a bound just below a power of two up to it', () => {
    // The bound is 7.999999999999999, whose log2 rounds to exactly 3; scale 8 would give
    // 16384 * c * 8 + 1 > INT32_MAX, so the guard halves it to 4.
    const clipRange = 16383.999984741213;
    const bound = (INT32_MAX - 1) / (clipRange * 16384);
    expect(bound).toBeLessThan(8);
    expect(Math.floor(Math.log2(bound))).toBe(3);
    expect(clipRange * 16384 * 8 + 1).toBeGreaterThan(INT32_MAX);
    expect(derivedScale(1, clipRange, 16384)).toBe(4);
    expect(derivedScale(1, 268435455.75000003, 1)).toBe(4);
  });

  it('every derived scale is the largest power of two that cannot overflow', () => {
    for (const m of [1, 3, 7, 10, 1000, 123_457]) {
      for (const clip of [0.01, 0.5, 1, 3, 100]) {
        for (const w of [1, 3, 100, DEFAULT_WEIGHT_CAP]) {
          const s = derivedScale(m, clip, w);
          if (s === 0) {
            // No power of two keeps 256 levels without overflow.
            const coarsest = 2 ** Math.ceil(Math.log2(256 / (clip * w)));
            expect(clip * w * coarsest).toBeGreaterThanOrEqual(256);
            expect(m * (clip * w * coarsest + 1)).toBeGreaterThan(INT32_MAX);
            continue;
          }
          expect(Number.isInteger(Math.log2(s))).toBe(true);
          expect(m * (clip * w * s + 1)).toBeLessThanOrEqual(INT32_MAX);
          expect(m * (clip * w * s * 2 + 1)).toBeGreaterThan(INT32_MAX);
          expect(clip * w * s).toBeGreaterThanOrEqual(256);
        }
      }
    }
  });

  it('caps SecAgg+ neighbourhoods at 254 neighbours (255 share holders)', () => {
    // k = 10 * ceil(log2 n): 250 at n = 2^25, 260 (capped to 254) just above it.
    expect(graphParams(2 ** 25)).toMatchObject({ neighbours: 250, holders: 251 });
    expect(graphParams(2 ** 25 + 1)).toMatchObject({
      neighbours: 254,
      holders: 255,
      threshold: 170,
      maxColluders: 84,
      complete: false,
    });
    expect(graphParams(Number.MAX_SAFE_INTEGER).holders).toBe(255);
    expect(() => graphParams(2)).toThrow(/participants must be an integer in \[3, /);
  });

  it('names the offending field when choosing parameters', () => {
    const ok = { vectorLength: 4, clipRange: 1 };
    expect(() => chooseSecAggParams(0, ok)).toThrow(/CONFIG_INVALID: cohortSize must be/);
    expect(() => chooseSecAggParams(5, { ...ok, maxClients: 0 })).toThrow(
      /CONFIG_INVALID: maxClients must be an integer in \[1, /,
    );
    expect(() => chooseSecAggParams(5, { ...ok, clipRange: 0 })).toThrow(
      /CONFIG_INVALID: clipRange must be a positive/,
    );
    expect(() => chooseSecAggParams(5, { ...ok, weightCap: 0.5 })).toThrow(
      /CONFIG_INVALID: weightCap must be/,
    );
    expect(() => chooseSecAggParams(10_000_000, { ...ok, weightCap: 1 })).toThrow(
      /CONFIG_UNSAFE: no scale keeps 256 fixed-point levels/,
    );
  });

  it('names the offending field of a refused config', () => {
    expect(() => assertSafeConfig({ ...base, vectorLength: 0 })).toThrow(
      /CONFIG_INVALID: vectorLength must be/,
    );
    expect(() => assertSafeConfig({ ...base, clipRange: 0 })).toThrow(
      /CONFIG_INVALID: clipRange must be/,
    );
    // Zero is not positive: refused as malformed, not merely as a wrong scale.
    expect(() => assertSafeConfig({ ...base, scale: 0 })).toThrow(
      /CONFIG_INVALID: scale must be a positive/,
    );
    expect(() => assertSafeConfig({ ...base, weightCap: 0 })).toThrow(
      /CONFIG_INVALID: weightCap must be/,
    );
    expect(() => assertSafeConfig({ ...base, maxClients: 2 })).toThrow(
      /CONFIG_INVALID: maxClients must be an integer in \[3, /,
    );
    expect(() => assertSafeConfig(base, 0)).toThrow(/CONFIG_INVALID: cohortSize must be/);
  });

  it('accepts vector lengths up to the cap and refuses one more', () => {
    const at = { ...base, vectorLength: MAX_VECTOR_LENGTH };
    expect(() => assertSafeConfig(at)).not.toThrow();
    expect(() => assertSafeConfig({ ...at, vectorLength: MAX_VECTOR_LENGTH + 1 })).toThrow(
      /CONFIG_INVALID: vectorLength/,
    );
  });

  it('refuses a total weight that can overflow, and bounds without precision, by name', () => {
    // 3 * 2^30 > INT32_MAX although each element stays in range (scale 0.5 is the derived one).
    const heavy: SecAggConfig = {
      modulusBits: 32,
      vectorLength: 1,
      clipRange: 1,
      scale: 0.5,
      weightCap: 2 ** 30,
      maxClients: 3,
    };
    expect(derivedScale(3, 1, 2 ** 30)).toBe(0.5);
    expect(() => assertSafeConfig(heavy)).toThrow(
      /CONFIG_UNSAFE: maxClients \* weightCap must stay below 2\^31/,
    );
    expect(() => assertSafeConfig({ ...heavy, weightCap: 2 ** 29 })).toThrow(
      /CONFIG_UNSAFE: scale 0.5 is not the derived 1 /,
    );
    // INT32_MAX * 1 is not above INT32_MAX: refused for lack of precision, not for the weight.
    expect(() =>
      assertSafeConfig({ ...heavy, weightCap: 1, maxClients: INT32_MAX, scale: 1 }),
    ).toThrow(/CONFIG_UNSAFE: no scale keeps 256/);
    // Enough room for the weights, but too little precision: the no-precision error, not a
    // scale mismatch against a derived 0.
    expect(() =>
      assertSafeConfig({ ...heavy, weightCap: 1, maxClients: 10_000_000, scale: 128 }),
    ).toThrow(/CONFIG_UNSAFE: no scale keeps 256 fixed-point levels .* for 10000000 clients/);
  });
});
