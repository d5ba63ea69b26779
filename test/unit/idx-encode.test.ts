import { datasetFromIdx, datasetToIdx, encodeIdx, parseIdx } from '../../shared/data/idx';
import type { Dataset } from '../../shared/data/dataset';

describe('IDX encoding (what public sample shards travel as)', () => {
  it('writes the header byte for byte', () => {
    const bytes = encodeIdx([2, 3], Uint8Array.from([1, 2, 3, 4, 5, 6]));
    expect(Array.from(bytes)).toEqual([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6]);
  });

  it('refuses dimensions that do not hold the data', () => {
    expect(() => encodeIdx([2, 2], new Uint8Array(5))).toThrow(RangeError);
    expect(() => encodeIdx([], new Uint8Array(0))).toThrow(RangeError);
  });

  it('round-trips a byte-valued dataset exactly, grayscale and colour', () => {
    for (const shape of [
      [2, 2, 1],
      [2, 1, 3],
    ] as const) {
      const size = shape[0] * shape[1] * shape[2];
      const bytes = Uint8Array.from({ length: 3 * size }, (_, i) => (i * 37) % 256);
      const data: Dataset = {
        images: Float32Array.from(bytes, (b) => b / 255),
        labels: Uint8Array.from([0, 9, 4]),
        count: 3,
        shape,
        classes: 10,
      };
      const idx = datasetToIdx(data);
      const back = datasetFromIdx(parseIdx(idx.images), parseIdx(idx.labels), 10);
      expect(back.shape).toEqual(shape);
      expect(Array.from(back.labels)).toEqual([0, 9, 4]);
      expect(Array.from(back.images)).toEqual(Array.from(data.images));
    }
  });
});
