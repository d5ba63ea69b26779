import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCifar10Binary } from '../../shared/data/cifar10-binary';
import type { DatasetSplit } from '../../shared/data/dataset';
import { emptyLike } from './idx-folder';
import { isDirectory, readDataFile } from './read-data-file';

/** The CIFAR-10 binary files of a folder: training batches in numeric order, test optional. */
export interface Cifar10Files {
  train: string[];
  test?: string;
}

const TRAIN = /^data_batch_(\d+)\.bin(\.gz)?$/;
const TEST = /^test_batch\.bin(\.gz)?$/;

/**
 * Finds CIFAR-10 binary files (data_batch_N.bin[.gz], test_batch.bin[.gz]) in `dir` or in
 * its `cifar-10-batches-bin/` subfolder, the layout of the official archive. Null if none.
 */
export async function findCifar10Files(dir: string): Promise<Cifar10Files | null> {
  for (const folder of [dir, join(dir, 'cifar-10-batches-bin')]) {
    if (!(await isDirectory(folder))) continue;
    const names = await readdir(folder);
    const train = names
      .filter((name) => TRAIN.test(name))
      .sort((a, b) => Number(TRAIN.exec(a)![1]) - Number(TRAIN.exec(b)![1]))
      .map((name) => join(folder, name));
    if (train.length === 0) continue;
    const test = names.find((name) => TEST.test(name));
    return { train, ...(test !== undefined ? { test: join(folder, test) } : {}) };
  }
  return null;
}

/** Loads CIFAR-10 binary batches; the training batches are concatenated in order. */
export async function loadCifar10Files(files: Cifar10Files): Promise<DatasetSplit> {
  const parts = await Promise.all(files.train.map((path) => readDataFile(path)));
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  const train = parseCifar10Binary(joined, files.train.join(' + '));
  const test =
    files.test !== undefined
      ? parseCifar10Binary(await readDataFile(files.test), files.test)
      : emptyLike(train);
  return { train, test };
}
