import { CohortError } from '../errors';
import type { Dataset } from './dataset';

/** Bytes of one CIFAR-10 binary record: a label, then 32x32 red, green and blue planes. */
export const CIFAR10_RECORD_BYTES = 1 + 3 * 1024;

/** The ten CIFAR-10 class names, in label order (from batches.meta.txt). */
export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
] as const;

/**
 * Parses CIFAR-10 binary batches (one or several concatenated) into Cohort's NHWC layout:
 * the format stores each image as three colour planes, the training loop wants interleaved
 * channels. Platform-free so a browser can parse the same files.
 * @throws CohortError DATA_INVALID when the size is not a whole number of records (CIFAR-100
 *   binaries have 3074-byte records) or a label is not in 0..9.
 */
export function parseCifar10Binary(bytes: Uint8Array, name = 'CIFAR-10 data'): Dataset {
  if (bytes.length === 0 || bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    const hint = bytes.length % 3074 === 0 && bytes.length > 0 ? ' (CIFAR-100 binary?)' : '';
    throw new CohortError(
      'DATA_INVALID',
      `${name}: ${bytes.length} bytes is not a whole number of ${CIFAR10_RECORD_BYTES}-byte CIFAR-10 records${hint}`,
    );
  }
  const count = bytes.length / CIFAR10_RECORD_BYTES;
  const images = new Float32Array(count * 3072);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const record = i * CIFAR10_RECORD_BYTES;
    const label = bytes[record]!;
    if (label > 9) {
      throw new CohortError(
        'DATA_INVALID',
        `${name}: record ${i} has label ${label}, expected 0..9`,
      );
    }
    labels[i] = label;
    const out = i * 3072;
    for (let p = 0; p < 1024; p++) {
      images[out + 3 * p] = bytes[record + 1 + p]! / 255;
      images[out + 3 * p + 1] = bytes[record + 1025 + p]! / 255;
      images[out + 3 * p + 2] = bytes[record + 2049 + p]! / 255;
    }
  }
  return { images, labels, count, shape: [32, 32, 3], classes: 10 };
}
