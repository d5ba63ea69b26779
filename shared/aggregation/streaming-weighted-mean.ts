/**
 * Example-weighted averaging of client updates with memory independent of the cohort size:
 * the coordinator keeps one float64 accumulator of the model's length and folds each update
 * in as it arrives, instead of holding one buffer per client until the round ends.
 */
import { CohortError } from '../errors';
import { allocateFoldAccumulator, releaseFoldAccumulator, weightedFoldInto } from '../simd/kernels';

/**
 * Running weighted mean of equally long vectors. Float64 accumulation keeps the result exact
 * to float32 precision even for thousands of clients. A rejected vector leaves the
 * accumulator untouched, so one bad update never poisons the round. The accumulator lives in a
 * WebAssembly SIMD kernel's memory where SIMD is available (see ../simd/kernels), which checks
 * and folds 128 bits per instruction; the sums are bit-identical to the JavaScript loop's.
 */
export class StreamingWeightedMean {
  /** Allocated by the first add: a mean never fed (a secure round's) costs no memory. */
  private sum: Float64Array | null = null;
  private added = 0;
  private released = false;
  private weightSum = 0;

  constructor(readonly length: number) {
    if (!Number.isInteger(length) || length < 1) {
      throw new CohortError(
        'CONFIG_INVALID',
        `accumulator length must be a positive integer, got ${length}`,
      );
    }
  }

  /** Number of vectors folded in so far. */
  get count(): number {
    return this.added;
  }

  /** Sum of the weights of the vectors folded in so far (e.g. total training examples). */
  get totalWeight(): number {
    return this.weightSum;
  }

  /**
   * Folds in `vector` with `weight` (usually the client's example count). Throws UPDATE_SHAPE
   * for a wrong length, UPDATE_NON_FINITE for NaN/Infinity, MESSAGE_INVALID for a weight that
   * is not a positive finite number; all checks run before anything is accumulated.
   */
  add(vector: Float32Array, weight: number): void {
    this.checkNotReleased();
    if (vector.length !== this.length) {
      throw new CohortError(
        'UPDATE_SHAPE',
        `update has ${vector.length} values, model has ${this.length}`,
      );
    }
    // Number.isFinite is false for every non-number (a string weight would pass `<= 0`).
    if (!Number.isFinite(weight) || weight <= 0) {
      throw new CohortError(
        'MESSAGE_INVALID',
        `update weight must be a positive finite number, got ${weight}`,
      );
    }
    // Checks every element before it accumulates any: a rejected vector changes nothing.
    this.sum ??= allocateFoldAccumulator(this.length);
    const index = weightedFoldInto(this.sum, vector, weight);
    if (index >= 0) {
      throw new CohortError('UPDATE_NON_FINITE', `update has ${vector[index]} at index ${index}`, {
        index,
      });
    }
    this.added += 1;
    this.weightSum += weight;
  }

  /**
   * The weighted mean so far, as float32 (the model's precision). Throws ROUND_ABORTED when
   * nothing was added: there is no meaningful average of zero updates.
   */
  mean(): Float32Array {
    this.checkNotReleased();
    if (this.added === 0) {
      throw new CohortError('ROUND_ABORTED', 'no updates were added to the average');
    }
    const out = new Float32Array(this.length);
    const sum = this.sum!; // allocated by the first add
    // Stryker disable next-line EqualityOperator: one more step writes past a typed array's end, a no-op.
    for (let i = 0; i < this.length; i++) out[i] = sum[i]! / this.weightSum;
    return out;
  }

  /**
   * Hands the accumulator's memory to the next StreamingWeightedMean of the same length: a
   * fresh WebAssembly memory pays its first-touch page faults (~3 ms per MiB on a 2-core VM),
   * a recycled one does not. Call it once the round's mean has been taken; add and mean throw
   * INTERNAL afterwards. Without it the memory is recycled only after garbage collection.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (this.sum !== null) releaseFoldAccumulator(this.sum);
  }

  private checkNotReleased(): void {
    if (this.released) {
      throw new CohortError('INTERNAL', 'this StreamingWeightedMean was released');
    }
  }
}
