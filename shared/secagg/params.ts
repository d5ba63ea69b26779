import { toHex } from '../bytes';
import { CohortError } from '../errors';

import { SECAGG_DOMAIN, hash32 } from './encoding';

/**
 * The numeric parameters of one secure-aggregation round that the coordinator announces
 * before anyone has advertised keys. Everything a client's safety depends on is either here
 * and checked by each client against what it would derive itself (the scale), or not here at
 * all: the neighbour graph and the Shamir threshold are computed by every party from the
 * number of participants in the signed advertisement list ({@link graphParams}), so a
 * coordinator cannot pick a weak k or t. The config is hashed into every signature.
 */
export interface SecAggConfig {
  /**
   * Bits b of the wire modulus, one of {@link SECAGG_MODULUS_BITS_CHOICES}. Masking and
   * unmasking run mod 2^32 (Uint32 arithmetic wraps for free); a client sends only the low b
   * bits of each masked element, which is enough because reduction mod 2^b commutes with
   * addition, and the scale is derived so that the sum fits b-bit two's complement.
   */
  readonly modulusBits: number;
  /** Number of model parameters; the masked vector has two more elements (weight, loss). */
  readonly vectorLength: number;
  /** Every update element is clipped to [-clipRange, clipRange] before quantization. */
  readonly clipRange: number;
  /** Fixed-point scale: a clipped element x of a client with weight w becomes round(x*w*scale). */
  readonly scale: number;
  /** Example counts above this are capped, so one client cannot dominate the mean. */
  readonly weightCap: number;
  /** Largest cohort the overflow bound (and so the scale) was computed for. */
  readonly maxClients: number;
}

/** The ring every mask and accumulator lives in: 2^32, the natural wrap of Uint32Array. */
export const SECAGG_MODULUS_BITS = 32;

/**
 * The wire widths a config may name: byte-aligned, so packing is a few shifts per element,
 * and at most the 32 bits of the ring. Anything else is refused (CONFIG_UNSAFE).
 */
export const SECAGG_MODULUS_BITS_CHOICES = [16, 24, 32] as const;

/** A wire width of {@link SECAGG_MODULUS_BITS_CHOICES}. */
export type SecAggModulusBits = (typeof SECAGG_MODULUS_BITS_CHOICES)[number];

/**
 * The fixed-point levels one example (weight 1) must keep over [-clip, clip], 2 * clip *
 * scale, for `modulusBits: 'auto'` to choose a width below 32. Stochastic rounding is
 * unbiased, and its noise in the decoded mean has a standard deviation of at most
 * 1 / (2 * scale * meanWeight * sqrt(n)) for n clients of mean weight meanWeight: at 16
 * levels over [-4, 4] (scale 2), ten clients of 100 examples add under 8e-4 per element,
 * far below the magnitude of a typical update, so a narrower wire costs no accuracy.
 */
export const MIN_EXAMPLE_LEVELS = 16;

/**
 * No round may finish with fewer than 3 contributions: with 2, each participant learns the
 * other's update exactly from the mean, which secure aggregation is meant to prevent.
 */
export const MIN_THRESHOLD = 3;

/**
 * Default client-side floor on the participants of a secure round. Smaller cohorts make
 * differencing across rounds cheap (two rounds whose cohorts differ by one client reveal it),
 * so an honest client refuses them unless told otherwise.
 */
export const DEFAULT_MIN_PARTICIPANTS = 5;

/** GF(256) Shamir gives each share a distinct non-zero x, so at most 255 holders (self included). */
export const MAX_SHARE_HOLDERS = 255;

/** Up to this many participants the complete graph (Bonawitz 2017) is used; above it, SecAgg+. */
export const COMPLETE_GRAPH_MAX_CLIENTS = 100;

/** Default example-count cap: large enough not to distort FedAvg on typical shards. */
export const DEFAULT_WEIGHT_CAP = 16384;

/** Hard cap on the vector length, so a hostile config cannot make clients allocate gigabytes. */
export const MAX_VECTOR_LENGTH = 1 << 26;

/** Elements a masked vector carries after the update: the weight, then the weighted loss. */
export const MASKED_EXTRA_ELEMENTS = 2;

/** The largest magnitude a signed b-bit sum may reach and still decode correctly. */
function signedMax(modulusBits: number): number {
  return 2 ** (modulusBits - 1) - 1;
}

/** Fewer fixed-point levels than this over the clip range for a full-weight client is useless. */
const MIN_LEVELS = 256;

/** Options of {@link chooseSecAggParams}. */
export interface SecAggParamOptions {
  vectorLength: number;
  clipRange: number;
  /** Defaults to {@link DEFAULT_WEIGHT_CAP}. */
  weightCap?: number;
  /** Defaults to the cohort size; raise it to reuse one config for several cohort sizes. */
  maxClients?: number;
  /**
   * Wire width (default 32). 'auto' picks the narrowest of {@link SECAGG_MODULUS_BITS_CHOICES}
   * whose derived scale keeps {@link MIN_EXAMPLE_LEVELS} levels per example, else 32.
   */
  modulusBits?: 'auto' | SecAggModulusBits;
}

/**
 * The config for a cohort: the finest power-of-two scale that cannot overflow 2^(b-1) for
 * `maxClients` clients at wire width b. Besides b there is nothing to choose: a client
 * recomputes the scale from the other fields and refuses any other, and the graph and
 * threshold follow from the participant count. The result is checked with
 * {@link assertSafeConfig} and frozen.
 */
export function chooseSecAggParams(cohortSize: number, options: SecAggParamOptions): SecAggConfig {
  requireInteger('cohortSize', cohortSize, 1);
  const maxClients = options.maxClients ?? cohortSize;
  requireInteger('maxClients', maxClients, 1);
  const weightCap = options.weightCap ?? DEFAULT_WEIGHT_CAP;
  requirePositive('clipRange', options.clipRange);
  requireInteger('weightCap', weightCap, 1);
  const modulusBits =
    options.modulusBits === 'auto'
      ? autoModulusBits(maxClients, options.clipRange, weightCap)
      : (options.modulusBits ?? SECAGG_MODULUS_BITS);
  const scale = derivedScale(maxClients, options.clipRange, weightCap, modulusBits);
  if (scale === 0) throw noPrecision(maxClients, modulusBits);
  const config: SecAggConfig = Object.freeze({
    modulusBits,
    vectorLength: options.vectorLength,
    clipRange: options.clipRange,
    scale,
    weightCap,
    maxClients,
  });
  assertSafeConfig(config, cohortSize);
  return config;
}

/**
 * The narrowest wire width whose derived scale gives one example {@link MIN_EXAMPLE_LEVELS}
 * levels over [-clip, clip] and whose weight sum fits, else 32 (today's full width, which
 * {@link chooseSecAggParams} then checks as usual).
 */
export function autoModulusBits(
  maxClients: number,
  clipRange: number,
  weightCap: number,
): SecAggModulusBits {
  for (const bits of SECAGG_MODULUS_BITS_CHOICES) {
    if (maxClients * weightCap > signedMax(bits)) continue;
    const scale = derivedScale(maxClients, clipRange, weightCap, bits);
    if (scale > 0 && 2 * clipRange * scale >= MIN_EXAMPLE_LEVELS) return bits;
  }
  return SECAGG_MODULUS_BITS;
}

/**
 * Largest power of two s with maxClients * (clip*weightCap*s + 1) <= 2^(b-1) - 1 for wire
 * width b (default 32), or 0 when none keeps {@link MIN_LEVELS} levels. Deterministic, so
 * every client derives the same one.
 */
export function derivedScale(
  maxClients: number,
  clipRange: number,
  weightCap: number,
  modulusBits: number = SECAGG_MODULUS_BITS,
): number {
  const max = signedMax(modulusBits);
  const perClient = max / maxClients - 1; // +1: stochastic rounding may round up once
  const bound = perClient / (clipRange * weightCap);
  // Stryker disable next-line EqualityOperator: at bound = 0 the scale below is 0 too, and so is the result.
  if (!(bound > 0)) return 0;
  let scale = 2 ** Math.floor(Math.log2(bound));
  // Guard against log2 rounding at exact powers of two.
  while (maxClients * (clipRange * weightCap * scale + 1) > max) scale /= 2;
  return clipRange * weightCap * scale < MIN_LEVELS ? 0 : scale;
}

/**
 * The security parameters of a round with `participants` signed advertisements: who
 * neighbours whom, how many shares rebuild a secret, and how many colluders that resists.
 */
export interface GraphParams {
  /** Participants (signed advertisements). */
  readonly participants: number;
  /** Neighbours per client: participants - 1 for the complete graph, else SecAgg+'s even k. */
  readonly neighbours: number;
  /** True for the complete graph (Bonawitz 2017). */
  readonly complete: boolean;
  /** Share holders per client, self included: m = neighbours + 1. */
  readonly holders: number;
  /** Shamir threshold t, and the minimum live holders of every neighbourhood at every phase. */
  readonly threshold: number;
  /**
   * The most clients of one neighbourhood that may collude with an active coordinator and
   * still learn nothing about an honest client's update: c < 2t - m (split views of who
   * dropped need 2t <= m + c honest-or-corrupt signers).
   */
  readonly maxColluders: number;
}

/**
 * Derives k and t from the participant count, identically on every client and on the
 * coordinator: the complete graph up to {@link COMPLETE_GRAPH_MAX_CLIENTS}, above it a SecAgg+
 * ring with k = 10*ceil(log2 n) rounded up to even (at most 254), and t = max(3, ceil(2m/3))
 * for m holders. That t survives a third of each neighbourhood dropping out and resists up to
 * 2t - m - 1 (about m/3 - 1) colluders; a t that resisted none would be refused.
 */
export function graphParams(participants: number): GraphParams {
  requireInteger('participants', participants, MIN_THRESHOLD);
  let neighbours: number;
  if (participants <= COMPLETE_GRAPH_MAX_CLIENTS) neighbours = participants - 1;
  else {
    const k = 10 * Math.ceil(Math.log2(participants));
    neighbours = Math.min(
      MAX_SHARE_HOLDERS - 1,
      // Stryker disable next-line ArithmeticOperator: k = 10 * ceil(log2 n) is even, so k % 2 is 0.
      k + (k % 2),
      // Stryker disable next-line ArithmeticOperator: above 100 participants k < n - 1, so this never binds.
      participants - 1,
    );
  }
  const complete = neighbours >= participants - 1;
  const holders = neighbours + 1;
  const threshold = Math.max(MIN_THRESHOLD, Math.ceil((2 * holders) / 3));
  const maxColluders = 2 * threshold - holders - 1;
  // Stryker disable next-line ConditionalExpression,LogicalOperator,BlockStatement: unreachable, every n >= 3 gives t <= m and 2t - m >= 2 (tested).
  if (threshold > holders || maxColluders < 1) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `t=${threshold} of ${holders} holders resists no colluder (needs 2t >= m + 2)`,
    );
  }
  return Object.freeze({ participants, neighbours, complete, holders, threshold, maxColluders });
}

/**
 * Refuses (CONFIG_UNSAFE) any config under which the protocol could silently produce a wrong
 * sum or be weakened: a wire width outside {@link SECAGG_MODULUS_BITS_CHOICES}, a scale other
 * than the one derived from the other fields for that width (too large overflows: a scale
 * derived for 32 bits sent with b = 24 would wrap; the coordinator has no reason to send
 * another), a weight sum that does not fit the width, or a cohort above maxClients. Clients
 * call it on the config they are sent; the coordinator on the one it chose. Malformed values
 * give CONFIG_INVALID.
 */
export function assertSafeConfig(config: SecAggConfig, cohortSize = config.maxClients): void {
  const bits = config.modulusBits;
  if (!(SECAGG_MODULUS_BITS_CHOICES as readonly number[]).includes(bits)) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `secure aggregation needs a modulus of ${SECAGG_MODULUS_BITS_CHOICES.join(', ')} bits, got ${bits}`,
    );
  }
  requireInteger('vectorLength', config.vectorLength, 1, MAX_VECTOR_LENGTH);
  requirePositive('clipRange', config.clipRange);
  requirePositive('scale', config.scale);
  requireInteger('weightCap', config.weightCap, 1);
  requireInteger('maxClients', config.maxClients, MIN_THRESHOLD);
  requireInteger('cohortSize', cohortSize, 1);
  if (cohortSize > config.maxClients) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `cohort of ${cohortSize} exceeds maxClients ${config.maxClients} the overflow bound assumes`,
    );
  }
  if (config.maxClients * config.weightCap > signedMax(bits)) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `maxClients * weightCap must stay below 2^${bits - 1} (a ${bits}-bit modulus)`,
    );
  }
  const expected = derivedScale(config.maxClients, config.clipRange, config.weightCap, bits);
  if (expected === 0) throw noPrecision(config.maxClients, bits);
  if (config.scale !== expected) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `scale ${config.scale} is not the derived ${expected} for these bounds and a ${bits}-bit modulus`,
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
    config.maxClients,
  ]
    .map((v) => String(v))
    .join(',');
  return toHex(hash32(SECAGG_DOMAIN.configHash, [canonical]));
}

function noPrecision(maxClients: number, modulusBits: number): CohortError {
  return new CohortError(
    'CONFIG_UNSAFE',
    `no scale keeps ${MIN_LEVELS} fixed-point levels without overflow for ${maxClients} clients ` +
      `at ${modulusBits} bits: lower maxClients, weightCap or clipRange, or widen the modulus`,
  );
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
