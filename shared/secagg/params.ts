import { toHex } from '../bytes';
import { CohortError } from '../errors';

import { SECAGG_DOMAIN, hash32 } from './encoding';

/**
 * Everything the parties of one secure-aggregation round must agree on. It is hashed into
 * every advertisement signature, so a coordinator cannot show different parameters (a tiny
 * modulus, a weak threshold) to different clients without the signatures failing.
 */
export interface SecAggConfig {
  /** Bits of the modulus; only 32 is supported (Uint32 arithmetic wraps for free). */
  readonly modulusBits: number;
  /** Number of model parameters; the masked vector has one more element (the weight). */
  readonly vectorLength: number;
  /** Every update element is clipped to [-clipRange, clipRange] before quantization. */
  readonly clipRange: number;
  /** Fixed-point scale: a clipped element x of a client with weight w becomes round(x*w*scale). */
  readonly scale: number;
  /** Example counts above this are capped, so one client cannot dominate the mean. */
  readonly weightCap: number;
  /** Shamir threshold t: shares needed to rebuild a secret; also the minimum survivor count. */
  readonly threshold: number;
  /** SecAgg+ neighbour count k; k >= participants - 1 means the complete graph (plain SecAgg). */
  readonly neighbours: number;
  /** Largest cohort the overflow bound was computed for. */
  readonly maxClients: number;
}

/** The only modulus the protocol implements: 2^32, the natural wrap of Uint32Array. */
export const SECAGG_MODULUS_BITS = 32;

/**
 * No round may finish with fewer than 3 contributions: with 2, each participant learns the
 * other's update exactly from the mean, which secure aggregation is meant to prevent.
 */
export const MIN_THRESHOLD = 3;

/** GF(256) Shamir gives each share a distinct non-zero x, so at most 255 holders (self included). */
export const MAX_SHARE_HOLDERS = 255;

/** Up to this many clients the complete graph (Bonawitz 2017) is used; above it, SecAgg+. */
export const COMPLETE_GRAPH_MAX_CLIENTS = 100;

/** Default example-count cap: large enough not to distort FedAvg on typical shards. */
export const DEFAULT_WEIGHT_CAP = 16384;

/** Hard cap on the vector length, so a hostile config cannot make clients allocate gigabytes. */
export const MAX_VECTOR_LENGTH = 1 << 26;

/** The largest magnitude a signed 32-bit sum may reach and still decode correctly. */
const INT32_MAX = 2 ** 31 - 1;

/** Fewer fixed-point levels than this over the clip range for a full-weight client is useless. */
const MIN_LEVELS = 256;

/** Options of {@link chooseSecAggParams}; everything but the vector length and clip range has a default. */
export interface SecAggParamOptions {
  vectorLength: number;
  clipRange: number;
  /** Defaults to {@link DEFAULT_WEIGHT_CAP}. */
  weightCap?: number;
  /** Defaults to the cohort size; raise it to reuse one config for several cohort sizes. */
  maxClients?: number;
  /** Defaults: complete graph up to 100 clients, else 10*ceil(log2 n) rounded up to even, <= 254. */
  neighbours?: number;
  /** Defaults to max(3, ceil(2m/3)) for neighbourhoods of m holders (self included). */
  threshold?: number;
  /** Defaults to the largest power of two that cannot overflow. */
  scale?: number;
}

/**
 * Picks safe parameters for a cohort so operators do not have to reason about overflow and
 * thresholds: the complete graph for small cohorts, a logarithmic SecAgg+ neighbourhood for
 * large ones, a 2/3 threshold (tolerates a third of each neighbourhood dropping while staying
 * above the n/2 safety bound), and the finest power-of-two scale that cannot overflow 2^31.
 * The result is checked with {@link assertSafeConfig} and frozen.
 */
export function chooseSecAggParams(cohortSize: number, options: SecAggParamOptions): SecAggConfig {
  requireInteger('cohortSize', cohortSize, 1);
  const maxClients = options.maxClients ?? cohortSize;
  requireInteger('maxClients', maxClients, 1);
  const weightCap = options.weightCap ?? DEFAULT_WEIGHT_CAP;
  requirePositive('clipRange', options.clipRange);
  requireInteger('weightCap', weightCap, 1);
  const neighbours = options.neighbours ?? defaultNeighbours(maxClients);
  const holders = Math.min(neighbours, maxClients - 1) + 1;
  const threshold = options.threshold ?? Math.max(MIN_THRESHOLD, Math.ceil((2 * holders) / 3));
  const scale = options.scale ?? largestSafeScale(maxClients, options.clipRange, weightCap);
  if (options.scale === undefined && options.clipRange * weightCap * scale < MIN_LEVELS) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `no scale keeps ${MIN_LEVELS} fixed-point levels without overflow for ${maxClients} clients: ` +
        'lower maxClients, weightCap or clipRange',
    );
  }
  const config: SecAggConfig = Object.freeze({
    modulusBits: SECAGG_MODULUS_BITS,
    vectorLength: options.vectorLength,
    clipRange: options.clipRange,
    scale,
    weightCap,
    threshold,
    neighbours,
    maxClients,
  });
  assertSafeConfig(config, cohortSize);
  return config;
}

function defaultNeighbours(maxClients: number): number {
  if (maxClients <= COMPLETE_GRAPH_MAX_CLIENTS) return Math.max(1, maxClients - 1);
  const k = 10 * Math.ceil(Math.log2(maxClients));
  return Math.min(MAX_SHARE_HOLDERS - 1, k + (k % 2));
}

/** Largest power of two s with maxClients * (clip*weightCap*s + 1) <= 2^31 - 1. */
function largestSafeScale(maxClients: number, clipRange: number, weightCap: number): number {
  const perClient = INT32_MAX / maxClients - 1; // +1: stochastic rounding may round up once
  const bound = perClient / (clipRange * weightCap);
  if (!(bound > 0)) return 0;
  let scale = 2 ** Math.floor(Math.log2(bound));
  // Guard against log2 rounding at exact powers of two.
  while (maxClients * (clipRange * weightCap * scale + 1) > INT32_MAX) scale /= 2;
  return scale;
}

/**
 * Number of share holders (self included) of each client when `participants` clients take
 * part: the whole cohort for the complete graph, k + 1 for SecAgg+.
 */
export function holdersPerClient(config: SecAggConfig, participants: number): number {
  return Math.min(config.neighbours, participants - 1) + 1;
}

/**
 * Refuses (CONFIG_UNSAFE) any config under which the protocol could silently produce a wrong
 * sum or leak: a modulus other than 2^32, a scale that could overflow the signed range for
 * `cohortSize` (default maxClients) clients, a threshold below 3 or not above half of a
 * neighbourhood (else the coordinator could collect both kinds of shares of one client), a
 * neighbourhood larger than GF(256) Shamir allows. Clients call it on the config they are
 * sent; the coordinator on the one it chose. Malformed values give CONFIG_INVALID.
 */
export function assertSafeConfig(config: SecAggConfig, cohortSize = config.maxClients): void {
  if (config.modulusBits !== SECAGG_MODULUS_BITS) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `secure aggregation needs a ${SECAGG_MODULUS_BITS}-bit modulus, got ${config.modulusBits}`,
    );
  }
  requireInteger('vectorLength', config.vectorLength, 1, MAX_VECTOR_LENGTH);
  requirePositive('clipRange', config.clipRange);
  requirePositive('scale', config.scale);
  requireInteger('weightCap', config.weightCap, 1);
  requireInteger('maxClients', config.maxClients, 1);
  requireInteger('neighbours', config.neighbours, 1);
  requireInteger('threshold', config.threshold, 1);
  requireInteger('cohortSize', cohortSize, 1);
  if (cohortSize > config.maxClients) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `cohort of ${cohortSize} exceeds maxClients ${config.maxClients} the overflow bound assumes`,
    );
  }
  const perClient = config.clipRange * config.weightCap * config.scale + 1;
  if (
    config.maxClients * perClient > INT32_MAX ||
    config.maxClients * config.weightCap > INT32_MAX
  ) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `maxClients * (clipRange * weightCap * scale + 1) must stay below 2^31 (sum could overflow)`,
    );
  }
  const complete = config.neighbours >= config.maxClients - 1;
  if (!complete && config.neighbours % 2 !== 0) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `SecAgg+ neighbour count must be even, got ${config.neighbours}`,
    );
  }
  const largestNeighbourhood = holdersPerClient(config, config.maxClients);
  if (largestNeighbourhood > MAX_SHARE_HOLDERS) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `a neighbourhood of ${largestNeighbourhood} exceeds the ${MAX_SHARE_HOLDERS} Shamir shares GF(256) allows`,
    );
  }
  if (config.threshold < MIN_THRESHOLD || 2 * config.threshold <= largestNeighbourhood) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `threshold ${config.threshold} must be >= ${MIN_THRESHOLD} and > half of ${largestNeighbourhood} share holders`,
    );
  }
  if (config.threshold > holdersPerClient(config, cohortSize)) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `threshold ${config.threshold} exceeds the ${holdersPerClient(config, cohortSize)} share holders of a cohort of ${cohortSize}`,
    );
  }
}

/**
 * Hex digest binding every config field in a fixed order; signed by each client with its keys,
 * so all honest clients provably ran the round under one config.
 */
export function configHash(config: SecAggConfig): string {
  const canonical = [
    config.modulusBits,
    config.vectorLength,
    config.clipRange,
    config.scale,
    config.weightCap,
    config.threshold,
    config.neighbours,
    config.maxClients,
  ]
    .map((v) => String(v))
    .join(',');
  return toHex(hash32(SECAGG_DOMAIN.configHash, [canonical]));
}

function requireInteger(
  name: string,
  value: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new CohortError(
      'CONFIG_INVALID',
      `${name} must be an integer in [${min}, ${max}], got ${value}`,
    );
  }
}

function requirePositive(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) {
    throw new CohortError(
      'CONFIG_INVALID',
      `${name} must be a positive finite number, got ${value}`,
    );
  }
}
