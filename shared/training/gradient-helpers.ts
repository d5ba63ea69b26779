/**
 * Data-parallel training steps. A step's gradient is the mean over the batch of each example's
 * loss gradient, so it can be computed in parts: every helper thread sums the cross-entropy
 * gradients of its share of the batch at the same weights, the calling thread does its own
 * share, and the sums are added and divided by the batch size. That is the full-batch step,
 * up to the order of float additions; the optimizer runs once, on the calling thread.
 */
import type { Dataset } from '../data/dataset';
import { CohortError } from '../errors';

/** What the helpers return for one step: summed over all parts they computed. */
export interface HelperGradients {
  /** Sum over the parts' examples of the cross-entropy gradient, flat in trainable-weight order. */
  gradient: Float32Array;
  /** Sum over the parts' examples of the cross-entropy. */
  lossSum: number;
}

/**
 * Threads (other than the caller) that compute summed gradients of parts of a batch. The
 * platform provides them (Node worker threads, each with its own wasm instance); the training
 * loop stays platform-free.
 */
export interface GradientHelpers {
  /** How many threads help; the caller computes one more part itself. */
  readonly count: number;
  /** Hands the helpers the data the parts index into; called before the first step. */
  begin(data: Dataset): Promise<void>;
  /**
   * The summed gradient and loss over `parts` (example indices into the data of `begin`), at
   * `weights` (every trainable weight, flat, in the model's order). Parts may be empty.
   */
  compute(weights: Float32Array, parts: readonly (readonly number[])[]): Promise<HelperGradients>;
}

/**
 * Splits a batch into `count` contiguous parts whose sizes differ by at most one (the first
 * parts get the extra examples). Pure, for tests.
 */
export function splitBatch(indices: readonly number[], count: number): number[][] {
  if (!Number.isInteger(count) || count < 1) {
    throw new CohortError('INTERNAL', `a batch splits into at least one part, not ${count}`);
  }
  const base = Math.floor(indices.length / count);
  const extra = indices.length % count;
  const parts: number[][] = [];
  let start = 0;
  for (let p = 0; p < count; p++) {
    const size = base + (p < extra ? 1 : 0);
    parts.push(indices.slice(start, start + size));
    start += size;
  }
  return parts;
}
