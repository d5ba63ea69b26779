import { createRng } from '../../shared/random';
import type { IdentityKeyPair } from '../../shared/identity';
import { clientIdFromPublicKey, generateIdentity } from '../../shared/identity';
import type {
  RandomFill,
  SecAggConfig,
  SecAggPhase,
  SimulatedSecAggClient,
} from '../../shared/secagg';
import { chooseSecAggParams } from '../../shared/secagg';

/** A model hash as the coordinator would announce it (64 hex chars). */
export const MODEL_HASH = 'ab'.repeat(32);

/** Identities are slow-ish to make (Ed25519); tests share a pool. */
const pool: IdentityKeyPair[] = [];
export function identities(n: number): IdentityKeyPair[] {
  while (pool.length < n) pool.push(generateIdentity());
  return pool.slice(0, n);
}

/** A seeded random source for stochastic rounding, so failures reproduce. */
export function seededFill(seed: number): RandomFill {
  const rng = createRng(seed);
  return (out) => {
    for (let i = 0; i < out.length; i++) out[i] = rng.uint32();
  };
}

/** Clients with random updates in (-range, range) and example counts in [10, 200]. */
export function makeClients(
  n: number,
  vectorLength: number,
  seed: number,
  range = 0.5,
): SimulatedSecAggClient[] {
  const rng = createRng(seed);
  return identities(n).map((identity, i) => {
    const update = new Float32Array(vectorLength);
    for (let j = 0; j < vectorLength; j++) update[j] = (2 * rng.next() - 1) * range;
    return {
      identity,
      update,
      exampleCount: 10 + rng.int(191),
      randomFill: seededFill(seed * 1000 + i),
    };
  });
}

/** A config for `n` clients and a small vector. */
export function smallConfig(
  n: number,
  vectorLength: number,
  overrides: Partial<SecAggConfig> = {},
): SecAggConfig {
  const base = chooseSecAggParams(n, { vectorLength, clipRange: 1, weightCap: 1000 });
  return { ...base, ...overrides };
}

/** Plain FedAvg of the given clients (float64), with the same clipping and weight cap. */
export function plainWeightedMean(
  clients: readonly SimulatedSecAggClient[],
  config: SecAggConfig,
): { mean: Float64Array; totalWeight: number } {
  const mean = new Float64Array(config.vectorLength);
  let totalWeight = 0;
  for (const c of clients) {
    const w = Math.min(c.exampleCount, config.weightCap);
    totalWeight += w;
    for (let i = 0; i < mean.length; i++) {
      const x = Math.max(-config.clipRange, Math.min(config.clipRange, c.update[i]!));
      mean[i] = mean[i]! + x * w;
    }
  }
  for (let i = 0; i < mean.length; i++) mean[i] = mean[i]! / totalWeight;
  return { mean, totalWeight };
}

/**
 * Largest error secure aggregation may add to the mean: each client's stochastic rounding is
 * off by < 1 unit of 1/scale per element, so the mean is off by < n / (scale * totalWeight);
 * plus float32 output rounding.
 */
export function quantizationTolerance(
  n: number,
  config: SecAggConfig,
  totalWeight: number,
): number {
  return n / (config.scale * totalWeight) + 1e-6;
}

/** Maximum absolute difference of two vectors. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** A simulated client's id (derived from its identity key, as the coordinator derives it). */
export const idOf = (c: SimulatedSecAggClient): string =>
  clientIdFromPublicKey(c.identity.publicKey);

/** `clients` with client i dropping out at `drops[i]`. */
export function withDrops(
  clients: SimulatedSecAggClient[],
  drops: Record<number, SecAggPhase>,
): SimulatedSecAggClient[] {
  return clients.map((c, i) => (drops[i] ? { ...c, dropAt: drops[i] } : c));
}
