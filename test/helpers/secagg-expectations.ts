import { buildModel } from '../../shared/model/build-model';
import { getModelSpec } from '../../shared/model/registry';
import { MAX_MASKED_LOSS, chooseSecAggParams } from '../../shared/secagg';
import { extractWeights, hashWeights } from '../../shared/weights/codec';
import type { CapturedUpdate } from './secagg-probe';

/**
 * What a secure round on real sockets should have produced, computed independently of the
 * coordinator: the initial global model, the example-weighted mean of the survivors' updates,
 * the error quantization may add, and what the database recorded.
 */

/** The coordinator's round-1 global model: buildModel(mnist spec, seed), as coordinator.ts does. */
export async function initialGlobal(
  seed: number,
): Promise<{ weights: Float32Array; hash: string }> {
  const model = buildModel(getModelSpec('mnist'), seed);
  try {
    const { manifest, data } = extractWeights(model);
    return { weights: data.slice(), hash: await hashWeights(manifest, data) };
  } finally {
    model.dispose();
  }
}

/** FedAvg's mean: updates weighted by their example counts, in float64. */
export function exampleWeightedMean(updates: readonly CapturedUpdate[]): Float64Array {
  const mean = new Float64Array(updates[0]!.delta.length);
  let total = 0;
  for (const u of updates) {
    total += u.numExamples;
    for (let i = 0; i < mean.length; i++) mean[i] = mean[i]! + u.delta[i]! * u.numExamples;
  }
  for (let i = 0; i < mean.length; i++) mean[i] = mean[i]! / total;
  return mean;
}

/**
 * The example-weighted mean of the updates' train losses, in float64: what a secure round
 * decodes as meanTrainLoss (losses here stay inside the clip range, so clipping changes nothing).
 */
export function exampleWeightedLoss(updates: readonly CapturedUpdate[]): number {
  const total = totalExamples(updates);
  return updates.reduce((s, u) => s + u.trainLoss * u.numExamples, 0) / total;
}

/** Sum of the example counts of `updates` (the secure aggregate's total weight). */
export function totalExamples(updates: readonly CapturedUpdate[]): number {
  return updates.reduce((s, u) => s + u.numExamples, 0);
}

/** Element-wise a - b, in float64. */
export function difference(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  return Float64Array.from({ length: a.length }, (_, i) => a[i]! - b[i]!);
}

/** Largest |a[i] - b[i]|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return maxAbs(difference(a, b));
}

/** Largest |a[i]|. */
export function maxAbs(a: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]!));
  return max;
}

/**
 * The largest error secure aggregation may add to one element of the mean when `cohort`
 * clients trained (the coordinator sizes the parameters for them) and `survivors` of them,
 * with `totalWeight` examples, are summed: each survivor's stochastic rounding is off by less
 * than one unit of 1/scale, so the mean is off by less than survivors / (scale * totalWeight);
 * plus 1e-6 for the float32 roundings of the mean and of global + mean.
 */
export function secAggTolerance(options: {
  cohort: number;
  vectorLength: number;
  survivors: number;
  totalWeight: number;
  clipRange?: number;
  weightCap?: number;
  /** The coordinator's `--secure-bits` (default auto, as the coordinator's). */
  modulusBits?: 'auto' | 16 | 24 | 32;
}): { tolerance: number; lossTolerance: number; clipRange: number } {
  const clipRange = options.clipRange ?? 4;
  const config = chooseSecAggParams(options.cohort, {
    vectorLength: options.vectorLength,
    clipRange,
    weightCap: options.weightCap ?? 16384,
    modulusBits: options.modulusBits ?? 'auto',
  });
  const step = options.survivors / (config.scale * options.totalWeight);
  return {
    tolerance: step + 1e-6,
    // The loss travels as loss * clipRange / MAX_MASKED_LOSS: its rounding step is that much coarser.
    lossTolerance: step * (MAX_MASKED_LOSS / config.clipRange) + 1e-6,
    clipRange: config.clipRange,
  };
}
