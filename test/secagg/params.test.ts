import type { SecAggConfig } from '../../shared/secagg';
import {
  COMPLETE_GRAPH_MAX_CLIENTS,
  DEFAULT_WEIGHT_CAP,
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
    ['a modulus other than 2^32', { modulusBits: 16 }, 'CONFIG_UNSAFE'],
    ['a scale that can overflow', { scale: base.scale * 2 }, 'CONFIG_UNSAFE'],
    ['a coarser scale than the derived one', { scale: base.scale / 2 }, 'CONFIG_UNSAFE'],
    ['a maxClients below 3', { maxClients: 2 }, 'CONFIG_INVALID'],
    ['a fractional vector length', { vectorLength: 1.5 }, 'CONFIG_INVALID'],
    ['a negative clip range', { clipRange: -1 }, 'CONFIG_INVALID'],
  ] as [string, Partial<SecAggConfig>, string][])('refuses %s', (_label, change, code) => {
    expect(() => assertSafeConfig({ ...base, ...change })).toThrow(new RegExp(code));
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
});
