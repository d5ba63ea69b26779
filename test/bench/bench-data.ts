/**
 * Training data for throughput runs. Throughput does not depend on pixel values, so synthetic
 * images are honest; the real CIFAR-10 subset next to the repo is used when present so the
 * run also exercises real inputs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CIFAR10_RECORD_BYTES, parseCifar10Binary } from '../../shared/data/cifar10-binary';
import type { Dataset } from '../../shared/data/dataset';
import { randomDataset } from '../../shared/data/random-dataset';
import type { ModelSpec } from '../../shared/model/spec';

/** A dataset plus a short description of where it came from, for the table. */
export interface BenchData {
  data: Dataset;
  source: string;
}

/** `count` uniform [0, 1) images of the spec's input shape, labels cycling through the classes. */
export function syntheticData(spec: ModelSpec, count: number, seed = 7): BenchData {
  return { data: randomDataset(spec, count, seed), source: 'synthetic' };
}

/**
 * The first `count` images of `<repo>/../shared/data/cifar10/data_batch_1.bin[.gz]`, or null
 * when the file is absent or holds fewer images.
 */
export function cifar10Subset(repoRoot: string, count: number): BenchData | null {
  const folder = resolve(repoRoot, '..', 'shared', 'data', 'cifar10');
  const path = ['data_batch_1.bin', 'data_batch_1.bin.gz']
    .map((name) => resolve(folder, name))
    .find((candidate) => existsSync(candidate));
  if (path === undefined) return null;
  const raw = readFileSync(path);
  const bytes = path.endsWith('.gz') ? gunzipSync(raw) : raw;
  const needed = count * CIFAR10_RECORD_BYTES;
  if (bytes.length < needed) return null;
  return {
    data: parseCifar10Binary(bytes.subarray(0, needed), path),
    source: 'CIFAR-10 subset',
  };
}
