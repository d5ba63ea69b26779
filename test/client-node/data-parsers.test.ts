import { parseCifar10Binary } from '../../shared/data/cifar10-binary';
import { datasetFromIdx, parseIdx } from '../../shared/data/idx';
import { isCohortError } from '../../shared/errors';
import { cifarPixel, cifarRecords, idxBytes } from './data-fixtures';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return isCohortError(error) ? error.code : 'not a CohortError';
  }
  return undefined;
}

describe('parseIdx', () => {
  it('reads dimensions and data', () => {
    const parsed = parseIdx(idxBytes([2, 3], [1, 2, 3, 4, 5, 6]));
    expect(parsed.dims).toEqual([2, 3]);
    expect(Array.from(parsed.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('rejects a bad magic number, a non-byte type, and wrong sizes', () => {
    const good = idxBytes([2, 2], [1, 2, 3, 4]);
    const badMagic = good.slice();
    badMagic[0] = 1;
    expect(codeOf(() => parseIdx(badMagic))).toBe('DATA_INVALID');
    const floats = good.slice();
    floats[2] = 0x0d;
    expect(() => parseIdx(floats, 'x.idx')).toThrow(/x\.idx holds float32 values/);
    expect(() => parseIdx(good.subarray(0, good.length - 1))).toThrow(/truncated/);
    expect(codeOf(() => parseIdx(new Uint8Array([0, 0, 8, 2, 0, 0])))).toBe('DATA_INVALID');
    expect(codeOf(() => parseIdx(new Uint8Array([0, 0, 8, 0])))).toBe('DATA_INVALID');
    expect(codeOf(() => parseIdx(new Uint8Array([...good, 9])))).toBe('DATA_INVALID');
  });
});

describe('datasetFromIdx', () => {
  it('scales pixels to [0, 1] and keeps labels', () => {
    const images = parseIdx(idxBytes([2, 1, 2], [0, 255, 51, 102]));
    const labels = parseIdx(idxBytes([2], [3, 7]));
    const data = datasetFromIdx(images, labels);
    expect(data).toMatchObject({ count: 2, shape: [1, 2, 1], classes: 10 });
    expect(Array.from(data.images)).toEqual([0, 1, 0.2, 0.4].map((v) => Math.fround(v)));
    expect(Array.from(data.labels)).toEqual([3, 7]);
  });

  it('reads a channels dimension and grows classes past 10 when labels need it', () => {
    const data = datasetFromIdx(
      parseIdx(idxBytes([1, 1, 1, 3], [0, 0, 0])),
      parseIdx(idxBytes([1], [25])),
    );
    expect(data.shape).toEqual([1, 1, 3]);
    expect(data.classes).toBe(26);
  });

  it('rejects mismatched counts, wrong ranks and out-of-range labels', () => {
    const images = parseIdx(idxBytes([2, 1, 1], [0, 0]));
    expect(() => datasetFromIdx(images, parseIdx(idxBytes([3], [0, 1, 2])))).toThrow(
      /2 images but 3 labels/,
    );
    expect(codeOf(() => datasetFromIdx(parseIdx(idxBytes([2], [0, 0])), images))).toBe(
      'DATA_INVALID',
    );
    expect(() => datasetFromIdx(images, parseIdx(idxBytes([2], [0, 5])), 4)).toThrow(
      /label 5 is out of range for 4 classes/,
    );
  });
});

describe('parseCifar10Binary', () => {
  it('converts planar records to NHWC in [0, 1]', () => {
    const data = parseCifar10Binary(cifarRecords([3, 9]));
    expect(data).toMatchObject({ count: 2, shape: [32, 32, 3], classes: 10 });
    expect(Array.from(data.labels)).toEqual([3, 9]);
    for (const [i, p, c] of [
      [0, 0, 0],
      [0, 5, 2],
      [1, 1023, 1],
      [1, 700, 0],
    ] as const) {
      expect(data.images[i * 3072 + p * 3 + c]).toBeCloseTo(cifarPixel(i, c, p) / 255, 6);
    }
  });

  it('rejects partial records, CIFAR-100 files and bad labels', () => {
    const one = cifarRecords([1]);
    expect(codeOf(() => parseCifar10Binary(one.subarray(0, 3000)))).toBe('DATA_INVALID');
    expect(codeOf(() => parseCifar10Binary(new Uint8Array(0)))).toBe('DATA_INVALID');
    expect(() => parseCifar10Binary(new Uint8Array(3074 * 2))).toThrow(/CIFAR-100/);
    const bad = one.slice();
    bad[0] = 10;
    expect(() => parseCifar10Binary(bad)).toThrow(/label 10/);
  });
});
