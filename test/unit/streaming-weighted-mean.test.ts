import { StreamingWeightedMean } from '../../shared/aggregation/streaming-weighted-mean';
import { isCohortError } from '../../shared/errors';
import type { ErrorCode } from '../../shared/errors';

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
  } catch (err) {
    if (isCohortError(err)) return err.code;
    throw err;
  }
  return undefined;
}

describe('StreamingWeightedMean', () => {
  it('computes the example-weighted mean by hand', () => {
    const acc = new StreamingWeightedMean(3);
    acc.add(new Float32Array([1, 2, 3]), 1);
    acc.add(new Float32Array([3, 6, 9]), 3);
    expect(acc.count).toBe(2);
    expect(acc.totalWeight).toBe(4);
    // (1*1 + 3*3)/4 = 2.5, (2 + 18)/4 = 5, (3 + 27)/4 = 7.5: not the unweighted 2, 4, 6.
    expect(Array.from(acc.mean())).toEqual([2.5, 5, 7.5]);
  });

  it('folds every element of lengths that leave 0 to 3 past the unrolled loop', () => {
    for (const length of [1, 2, 3, 4, 5, 6, 7, 9]) {
      const acc = new StreamingWeightedMean(length);
      acc.add(
        Float32Array.from({ length }, (_, i) => i + 1),
        1,
      );
      acc.add(
        Float32Array.from({ length }, (_, i) => 10 * (i + 1)),
        4,
      );
      // (1*(i+1) + 4*10*(i+1)) / 5 = 8.2 * (i+1)
      const expected = Array.from({ length }, (_, i) => 8.2 * (i + 1));
      Array.from(acc.mean()).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
    }
  });

  it('finds a non-finite element anywhere, reports its index and folds nothing', () => {
    const acc = new StreamingWeightedMean(7);
    acc.add(new Float32Array(7).fill(1), 1);
    for (const [index, bad] of [
      [0, -Infinity],
      [5, Infinity],
      [6, Number.NaN],
    ] as const) {
      const vector = new Float32Array(7).fill(3);
      vector[index] = bad;
      let caught: unknown;
      try {
        acc.add(vector, 1);
      } catch (err) {
        caught = err;
      }
      expect(isCohortError(caught, 'UPDATE_NON_FINITE') && caught.details).toEqual({ index });
    }
    expect(acc.count).toBe(1);
    expect(Array.from(acc.mean())).toEqual(new Array(7).fill(1));
  });

  it('keeps accumulating after mean() and does not touch its inputs', () => {
    const acc = new StreamingWeightedMean(2);
    const v = new Float32Array([2, -4]);
    acc.add(v, 2);
    expect(Array.from(acc.mean())).toEqual([2, -4]);
    acc.add(new Float32Array([5, 5]), 1);
    expect(Array.from(acc.mean())).toEqual([3, -1]);
    expect(Array.from(v)).toEqual([2, -4]);
  });

  it('stays accurate over many small contributions (float64 accumulator)', () => {
    const acc = new StreamingWeightedMean(1);
    for (let i = 0; i < 100_000; i++) acc.add(new Float32Array([i % 2 === 0 ? 1e-3 : 3e-3]), 1);
    expect(acc.mean()[0]).toBeCloseTo(2e-3, 9);
  });

  it('refuses bad updates without changing the running mean', () => {
    const acc = new StreamingWeightedMean(2);
    acc.add(new Float32Array([1, 1]), 1);
    expect(codeOf(() => acc.add(new Float32Array([1, 2, 3]), 1))).toBe('UPDATE_SHAPE');
    expect(codeOf(() => acc.add(new Float32Array([5, Number.NaN]), 1))).toBe('UPDATE_NON_FINITE');
    expect(codeOf(() => acc.add(new Float32Array([Infinity, 0]), 1))).toBe('UPDATE_NON_FINITE');
    for (const weight of [0, -1, Number.NaN, Infinity, '2' as unknown as number]) {
      expect(codeOf(() => acc.add(new Float32Array([9, 9]), weight))).toBe('MESSAGE_INVALID');
    }
    // The offending index travels with the error, for the log line and the client's answer.
    let caught: unknown;
    try {
      acc.add(new Float32Array([0, Number.NaN]), 1);
    } catch (err) {
      caught = err;
    }
    expect(isCohortError(caught, 'UPDATE_NON_FINITE') && caught.details).toEqual({ index: 1 });
    expect(acc.count).toBe(1);
    expect(acc.totalWeight).toBe(1);
    expect(Array.from(acc.mean())).toEqual([1, 1]);
  });

  it('has no mean before any update, and refuses a bad length', () => {
    expect(codeOf(() => new StreamingWeightedMean(2).mean())).toBe('ROUND_ABORTED');
    expect(codeOf(() => new StreamingWeightedMean(0))).toBe('CONFIG_INVALID');
    expect(codeOf(() => new StreamingWeightedMean(1.5))).toBe('CONFIG_INVALID');
  });
});
