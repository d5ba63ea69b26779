import { CohortError } from '../errors';
import type { Dataset } from './dataset';

/** An IDX file's contents: its dimensions and its unsigned-byte values, row-major. */
export interface IdxArray {
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

const IDX_TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

/**
 * Parses an IDX file (the MNIST container: two zero bytes, a type byte, a rank byte, one
 * big-endian uint32 per dimension, then the values). Only unsigned-byte data is accepted, the
 * type every MNIST-style image and label file uses. Platform-free so browsers can read the
 * same files. The returned data is a view into `bytes`, not a copy.
 * @throws CohortError DATA_INVALID for a bad magic number, type, or size.
 */
export function parseIdx(bytes: Uint8Array, name = 'IDX file'): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new CohortError('DATA_INVALID', `${name} is not an IDX file (bad magic number)`);
  }
  const type = bytes[2]!;
  const rank = bytes[3]!;
  if (type !== 0x08) {
    const known = IDX_TYPE_NAMES[type];
    throw new CohortError(
      'DATA_INVALID',
      `${name} holds ${known ?? `unknown type 0x${type.toString(16)}`} values; Cohort reads unsigned-byte IDX files`,
    );
  }
  if (rank === 0) throw new CohortError('DATA_INVALID', `${name} declares zero dimensions`);
  const headerLength = 4 + 4 * rank;
  if (bytes.length < headerLength) {
    throw new CohortError('DATA_INVALID', `${name} is truncated inside its header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let size = 1;
  for (let i = 0; i < rank; i++) {
    const dim = view.getUint32(4 + 4 * i, false);
    dims.push(dim);
    size *= dim;
  }
  const actual = bytes.length - headerLength;
  if (actual !== size) {
    throw new CohortError(
      'DATA_INVALID',
      `${name}: dimensions ${dims.join('x')} need ${size} bytes of data, found ${actual}` +
        (actual < size ? ' (truncated download?)' : ''),
    );
  }
  return { dims, data: bytes.subarray(headerLength) };
}

/**
 * Builds a Dataset from an images IDX ([count, height, width] or [count, height, width,
 * channels]) and a labels IDX ([count]), scaling pixels to [0, 1]. `classes` defaults to
 * max(10, largest label + 1), so MNIST-style sets keep 10 classes even when a small file
 * lacks the last ones.
 * @throws CohortError DATA_INVALID when shapes or counts disagree or a label is out of range.
 */
export function datasetFromIdx(images: IdxArray, labels: IdxArray, classes?: number): Dataset {
  const { dims } = images;
  if (dims.length !== 3 && dims.length !== 4) {
    throw new CohortError(
      'DATA_INVALID',
      `an images IDX file must have 3 or 4 dimensions (count, height, width[, channels]), found ${dims.join('x')}`,
    );
  }
  if (labels.dims.length !== 1) {
    throw new CohortError(
      'DATA_INVALID',
      `a labels IDX file must have 1 dimension, found ${labels.dims.join('x')}`,
    );
  }
  const count = dims[0]!;
  if (labels.dims[0] !== count) {
    throw new CohortError(
      'DATA_INVALID',
      `images and labels disagree: ${count} images but ${labels.dims[0]} labels`,
    );
  }
  const shape: [number, number, number] = [dims[1]!, dims[2]!, dims[3] ?? 1];
  let largest = -1;
  for (const label of labels.data) largest = Math.max(largest, label);
  const classCount = classes ?? Math.max(10, largest + 1);
  if (largest >= classCount) {
    throw new CohortError(
      'DATA_INVALID',
      `label ${largest} is out of range for ${classCount} classes`,
    );
  }
  const pixels = new Float32Array(images.data.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = images.data[i]! / 255;
  return { images: pixels, labels: labels.data.slice(), count, shape, classes: classCount };
}

/** Writes an unsigned-byte IDX file: the inverse of {@link parseIdx}. */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const size = dims.reduce((a, b) => a * b, 1);
  if (dims.length === 0 || dims.length > 255 || size !== data.length) {
    throw new RangeError(`IDX dimensions ${dims.join('x')} do not hold ${data.length} values`);
  }
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((dim, i) => view.setUint32(4 + 4 * i, dim, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/**
 * A Dataset as an images IDX ([count, height, width], plus channels when there are several)
 * and a labels IDX ([count]); pixels are rounded back to bytes, so a dataset that came from
 * bytes (MNIST, CIFAR-10) round-trips exactly through {@link datasetFromIdx}.
 */
export function datasetToIdx(data: Dataset): { images: Uint8Array; labels: Uint8Array } {
  const [h, w, c] = data.shape;
  const pixels = new Uint8Array(data.images.length);
  for (let i = 0; i < pixels.length; i++) {
    pixels[i] = Math.round(Math.min(1, Math.max(0, data.images[i]!)) * 255);
  }
  const dims = c === 1 ? [data.count, h, w] : [data.count, h, w, c];
  return { images: encodeIdx(dims, pixels), labels: encodeIdx([data.count], data.labels) };
}
