import { CohortError } from '../errors';
import { allocateWrapVector } from '../simd/kernels';
import type { SecAggConfig } from './params';
import { MASKED_EXTRA_ELEMENTS } from './params';

/**
 * Fixed-point encoding of weighted updates into Z_{2^32}, and decoding of the unmasked sum.
 * Masks are uniform in Z_{2^32}, so the update must be an integer vector there: each element
 * is clipped, multiplied by the client's (capped) example count and the scale, and rounded
 * stochastically, which keeps the rounding unbiased so the decoded mean has no drift however
 * many rounds are averaged. The weight and the weighted train loss travel as two extra
 * elements, so the coordinator learns only the total weight and the weighted mean loss, not
 * any client's example count or loss.
 */

/** What one client contributes to a secure round. */
export interface SecAggInput {
  /** Local model minus global model. */
  update: Float32Array;
  /** Examples trained on; capped at the config's weightCap. */
  exampleCount: number;
  /** Local train loss, clipped to [0, MAX_MASKED_LOSS] (only its weighted mean is revealed). */
  trainLoss: number;
}

/** Fills an array with uniform random uint32 values; injectable so tests can be reproducible. */
export type RandomFill = (out: Uint32Array) => void;

/** getRandomValues refuses more than 65,536 bytes per call. */
const MAX_RANDOM_WORDS = 16384;

/** The platform CSPRNG (crypto.getRandomValues), in chunks it accepts. */
export const cryptoRandomFill: RandomFill = (out) => {
  for (let offset = 0; offset < out.length; offset += MAX_RANDOM_WORDS) {
    globalThis.crypto.getRandomValues(out.subarray(offset, offset + MAX_RANDOM_WORDS));
  }
};

const TWO_POW_MINUS_32 = 2 ** -32;

/**
 * Largest train loss the masked vector carries; larger ones count as this. The loss element
 * is stored as loss * clipRange / MAX_MASKED_LOSS, so it never exceeds an update element's
 * bound and needs no overflow budget of its own (cross-entropy over 1,000 classes starts at
 * about 6.9).
 */
export const MAX_MASKED_LOSS = 64;

/**
 * The weight a client contributes: its example count, capped. Example counts must be positive
 * integers; a client with no examples has nothing to contribute and should not take part.
 */
export function cappedWeight(exampleCount: number, weightCap: number): number {
  if (!Number.isInteger(exampleCount) || exampleCount < 1) {
    throw new CohortError(
      'CONFIG_INVALID',
      `example count must be a positive integer, got ${exampleCount}`,
    );
  }
  return Math.min(exampleCount, weightCap);
}

/**
 * Encodes one client's input as the vector it masks: element i is
 * stochasticRound(clip(update[i]) * weight * scale) mod 2^32, then the weight, then
 * stochasticRound(clip(loss, 0, 64) / 64 * clipRange * weight * scale). Throws UPDATE_SHAPE on a wrong
 * length and UPDATE_NON_FINITE on NaN/Infinity (a diverged client must not silently
 * contribute a clipped extreme).
 */
export function quantizeWeightedUpdate(
  input: SecAggInput,
  config: SecAggConfig,
  randomFill: RandomFill = cryptoRandomFill,
): Uint32Array {
  const { update, exampleCount } = input;
  if (update.length !== config.vectorLength) {
    throw new CohortError(
      'UPDATE_SHAPE',
      `update has ${update.length} elements, the round expects ${config.vectorLength}`,
    );
  }
  const weight = cappedWeight(exampleCount, config.weightCap);
  const clip = config.clipRange;
  const factor = weight * config.scale;
  // In SIMD kernel memory: every mask is then added to it with vector instructions.
  const out = allocateWrapVector(update.length + MASKED_EXTRA_ELEMENTS);
  const random = new Uint32Array(Math.min(MAX_RANDOM_WORDS, update.length));
  for (let offset = 0; offset < update.length; offset += random.length) {
    const end = Math.min(update.length, offset + random.length);
    randomFill(random);
    for (let i = offset; i < end; i++) {
      const x = update[i]!;
      if (!Number.isFinite(x)) {
        throw new CohortError('UPDATE_NON_FINITE', `update element ${i} is ${x}`);
      }
      // Stryker disable next-line EqualityOperator: at x = clip (or -clip) either branch yields the same value.
      const clipped = x > clip ? clip : x < -clip ? -clip : x;
      const v = clipped * factor;
      const floor = Math.floor(v);
      // Round up with probability equal to the fractional part: E[result] = v exactly.
      out[i] = random[i - offset]! * TWO_POW_MINUS_32 < v - floor ? floor + 1 : floor;
    }
  }
  out[update.length] = weight;
  if (!Number.isFinite(input.trainLoss)) {
    throw new CohortError('UPDATE_NON_FINITE', `train loss is ${input.trainLoss}`);
  }
  const loss =
    (Math.min(MAX_MASKED_LOSS, Math.max(0, input.trainLoss)) / MAX_MASKED_LOSS) * clip * factor;
  const lossFloor = Math.floor(loss);
  const coin = new Uint32Array(1);
  randomFill(coin);
  out[update.length + 1] =
    coin[0]! * TWO_POW_MINUS_32 < loss - lossFloor ? lossFloor + 1 : lossFloor;
  return out;
}

/** Reads an element of Z_{2^32} as a signed 32-bit integer (two's complement). */
export function toSignedInt32(value: number): number {
  return value | 0;
}

/**
 * Reads the low `bits` bits (1..32) of a uint32 as a signed `bits`-bit integer (two's
 * complement): the shift left drops the higher bits, the arithmetic shift right brings the
 * sign bit back down. At 32 bits it is {@link toSignedInt32}.
 */
export function toSignedBits(value: number, bits: number): number {
  const shift = 32 - bits;
  return (value << shift) >> shift;
}

/** The decoded secure aggregate: FedAvg's example-weighted mean and the total weight. */
export interface DecodedAggregate {
  weightedMean: Float32Array;
  totalWeight: number;
  /** Weighted mean of the clients' (clipped) train losses. */
  meanTrainLoss: number;
}

/**
 * Turns the unmasked sum (length vectorLength + 2) into the weighted mean. Only the low
 * config.modulusBits bits of each element are the sum (clients send no more,
 * shared/secagg/packing.ts), read as b-bit two's complement. `maxTotalWeight` bounds the
 * weight element (survivors * weightCap): a wrong reconstruction leaves random residue there,
 * so an out-of-range weight is a cheap sign that shares were bad, and then nothing is output
 * (SECAGG_RECONSTRUCT). At a narrow modulus random residue lands in that range with
 * probability up to maxTotalWeight / 2^b (up to 1/2), so every element is checked too:
 * clipped inputs of total weight W sum to at most clip * scale * W plus one rounding step per
 * client in magnitude (and the loss is never negative), which residue spread over 2^b almost
 * never stays inside. Honest sums always do; a sum no clipped inputs could reach is refused.
 */
export function decodeAggregate(
  sum: Uint32Array,
  config: SecAggConfig,
  maxTotalWeight: number,
): DecodedAggregate {
  if (sum.length !== config.vectorLength + MASKED_EXTRA_ELEMENTS) {
    throw new CohortError('UPDATE_SHAPE', `aggregate has ${sum.length} elements`);
  }
  const bits = config.modulusBits;
  // The weight is never negative: its low b bits read unsigned.
  const totalWeight = (sum[config.vectorLength]! << (32 - bits)) >>> (32 - bits);
  if (totalWeight < 1 || totalWeight > maxTotalWeight) {
    throw new CohortError(
      'SECAGG_RECONSTRUCT',
      `unmasked total weight ${totalWeight} is outside [1, ${maxTotalWeight}]: masks did not cancel`,
    );
  }
  const divisor = config.scale * totalWeight;
  // |element| <= clip * w * scale + 1 for each of at most maxClients clients (+1: float slack).
  const bound = config.clipRange * config.scale * totalWeight + config.maxClients + 1;
  const weightedMean = new Float32Array(config.vectorLength);
  // Stryker disable next-line EqualityOperator: one more step writes past a typed array's end, a no-op.
  for (let i = 0; i < weightedMean.length; i++) {
    const v = toSignedBits(sum[i]!, bits);
    if (v > bound || v < -bound) throw beyondClipped(i, v, totalWeight);
    weightedMean[i] = v / divisor;
  }
  const loss = toSignedBits(sum[config.vectorLength + 1]!, bits);
  if (loss > bound || loss < 0) throw beyondClipped(config.vectorLength + 1, loss, totalWeight);
  const meanTrainLoss = (loss / divisor) * (MAX_MASKED_LOSS / config.clipRange);
  return { weightedMean, totalWeight, meanTrainLoss };
}

function beyondClipped(index: number, value: number, totalWeight: number): CohortError {
  return new CohortError(
    'SECAGG_RECONSTRUCT',
    `unmasked element ${index} is ${value}, beyond what clipped inputs of total weight ` +
      `${totalWeight} can sum to: masks did not cancel`,
  );
}
