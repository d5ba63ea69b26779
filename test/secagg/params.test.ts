import type { SecAggConfig } from '../../shared/secagg';
import {
  COMPLETE_GRAPH_MAX_CLIENTS,
  DEFAULT_WEIGHT_CAP,
  assertSafeConfig,
  chooseSecAggParams,
  configHash,
  decodeAggregate,
  quantizeWeightedUpdate,
} from '../../shared/secagg';

const INT32_MAX = 2 ** 31 - 1;

describe('secure-aggregation parameters', () => {
  it('uses the complete graph and a 2/3 threshold for small cohorts', () => {
    const config = chooseSecAggParams(10, { vectorLength: 100, clipRange: 1 });
    expect(config).toMatchObject({ modulusBits: 32, neighbours: 9, threshold: 7, maxClients: 10 });
    expect(config.weightCap).toBe(DEFAULT_WEIGHT_CAP);
    // The finest power-of-two scale that cannot overflow: twice it could.
    expect(Math.log2(config.scale) % 1).toBe(0);
    expect(10 * (config.clipRange * config.weightCap * config.scale + 1)).toBeLessThanOrEqual(
      INT32_MAX,
    );
    expect(10 * (config.clipRange * config.weightCap * config.scale * 2 + 1)).toBeGreaterThan(
      INT32_MAX,
    );
    expect(Object.isFrozen(config)).toBe(true);
    expect(chooseSecAggParams(3, { vectorLength: 1, clipRange: 1 }).threshold).toBe(3);
  });

  it('switches to a logarithmic SecAgg+ neighbourhood for large cohorts', () => {
    const config = chooseSecAggParams(1000, { vectorLength: 10, clipRange: 0.5 });
    expect(config.neighbours).toBe(100); // 10 * ceil(log2 1000)
    expect(config.threshold).toBe(68); // ceil(2 * 101 / 3)
    const edge = chooseSecAggParams(COMPLETE_GRAPH_MAX_CLIENTS + 1, {
      vectorLength: 10,
      clipRange: 1,
    });
    expect(edge.neighbours).toBeLessThan(COMPLETE_GRAPH_MAX_CLIENTS);
    expect(edge.neighbours % 2).toBe(0);
  });

  it('a worst-case sum at the chosen scale decodes exactly, one scale step finer wraps around', () => {
    const n = 20;
    const config = chooseSecAggParams(n, { vectorLength: 2, clipRange: 1, weightCap: 4096 });
    const sumAt = (c: SecAggConfig): Uint32Array => {
      const sum = new Uint32Array(3);
      for (let k = 0; k < n; k++) {
        const e = quantizeWeightedUpdate(new Float32Array([1, -1]), 4096, c);
        for (let i = 0; i < 3; i++) sum[i] = sum[i]! + e[i]!;
      }
      return sum;
    };
    const safe = decodeAggregate(sumAt(config), config, n * 4096);
    expect(Array.from(safe.weightedMean)).toEqual([1, -1]);
    const unsafe = { ...config, scale: config.scale * 2 };
    expect(() => assertSafeConfig(unsafe)).toThrow(/CONFIG_UNSAFE/);
    const wrapped = decodeAggregate(sumAt(unsafe), unsafe, n * 4096);
    expect(wrapped.weightedMean[0]).not.toBeCloseTo(1, 3); // what the check prevents
  });

  const base = chooseSecAggParams(10, { vectorLength: 100, clipRange: 1, weightCap: 100 });
  it.each([
    ['a modulus other than 2^32', { modulusBits: 16 }, 'CONFIG_UNSAFE'],
    ['a scale that can overflow', { scale: base.scale * 2 }, 'CONFIG_UNSAFE'],
    ['a threshold below 3', { threshold: 2 }, 'CONFIG_UNSAFE'],
    ['a threshold of half the share holders', { threshold: 5 }, 'CONFIG_UNSAFE'],
    ['a threshold above the share holders', { threshold: 11 }, 'CONFIG_UNSAFE'],
    ['an odd SecAgg+ neighbour count', { neighbours: 5 }, 'CONFIG_UNSAFE'],
    [
      'a neighbourhood larger than GF(256) allows',
      { neighbours: 300, maxClients: 1000, scale: 1 },
      'CONFIG_UNSAFE',
    ],
    ['a fractional vector length', { vectorLength: 1.5 }, 'CONFIG_INVALID'],
    ['a negative clip range', { clipRange: -1 }, 'CONFIG_INVALID'],
  ] as [string, Partial<SecAggConfig>, string][])('refuses %s', (_label, change, code) => {
    expect(() => assertSafeConfig({ ...base, ...change })).toThrow(new RegExp(code));
  });

  it('refuses cohorts larger than the overflow bound assumed, and thresholds a small cohort cannot meet', () => {
    expect(() => assertSafeConfig(base, 11)).toThrow(/CONFIG_UNSAFE/);
    expect(() => assertSafeConfig(base, 6)).toThrow(/CONFIG_UNSAFE/); // t = 7 > 6 holders
    expect(() => chooseSecAggParams(2, { vectorLength: 1, clipRange: 1 })).toThrow(/CONFIG_UNSAFE/);
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
