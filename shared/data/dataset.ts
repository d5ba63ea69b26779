/**
 * A labelled image dataset held in memory in the one layout every part of Cohort uses:
 * pixels scaled to [0, 1], channels-last, row-major, one float per channel value. Keeping a
 * single layout means loaders, partitioners and the training loop never convert.
 */
export interface Dataset {
  /** `count * height * width * channels` values in [0, 1]. */
  readonly images: Float32Array;
  /** `count` class indices in [0, classes). */
  readonly labels: Uint8Array;
  readonly count: number;
  /** [height, width, channels] */
  readonly shape: readonly [number, number, number];
  readonly classes: number;
}

/** Train and test parts of one party's data; `test` may be empty (count 0). */
export interface DatasetSplit {
  readonly train: Dataset;
  readonly test: Dataset;
}

/** The examples at `indices`, copied, in that order. */
export function selectExamples(data: Dataset, indices: ArrayLike<number>): Dataset {
  const [h, w, c] = data.shape;
  const size = h * w * c;
  const images = new Float32Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const src = indices[i]!;
    if (!Number.isInteger(src) || src < 0 || src >= data.count) {
      throw new RangeError(`example index ${src} out of range [0, ${data.count})`);
    }
    images.set(data.images.subarray(src * size, (src + 1) * size), i * size);
    labels[i] = data.labels[src]!;
  }
  return { images, labels, count: indices.length, shape: data.shape, classes: data.classes };
}

/** The first `limit` examples (all of them when `limit` is undefined or larger). */
export function limitExamples(data: Dataset, limit: number | undefined): Dataset {
  if (limit === undefined || limit >= data.count) return data;
  return selectExamples(
    data,
    Array.from({ length: limit }, (_, i) => i),
  );
}
