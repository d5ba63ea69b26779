import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset, DatasetSplit } from '../../shared/data/dataset';
import { datasetFromIdx, parseIdx } from '../../shared/data/idx';
import { CohortError } from '../../shared/errors';
import { readDataFile } from './read-data-file';

/** The four files of an MNIST-style folder; the test pair is optional. */
export interface IdxFiles {
  trainImages: string;
  trainLabels: string;
  testImages?: string;
  testLabels?: string;
}

const PATTERNS = {
  trainImages: /(^|[-_.])train-images[-.]idx[34]-ubyte(\.gz)?$/,
  trainLabels: /(^|[-_.])train-labels[-.]idx1-ubyte(\.gz)?$/,
  testImages: /(^|[-_.])(t10k|test)-images[-.]idx[34]-ubyte(\.gz)?$/,
  testLabels: /(^|[-_.])(t10k|test)-labels[-.]idx1-ubyte(\.gz)?$/,
};

/**
 * Finds MNIST-style IDX files in `dir` (train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-..., optionally .gz or with a prefix such as emnist-digits-). Null when there is no
 * train pair.
 * @throws CohortError DATA_INVALID when a role matches several files or only half a pair.
 */
export async function findIdxFiles(dir: string): Promise<IdxFiles | null> {
  const names = (await readdir(dir)).sort();
  const pick = (role: keyof typeof PATTERNS): string | undefined => {
    const matches = names.filter((name) => PATTERNS[role].test(name));
    if (matches.length > 1) {
      throw new CohortError(
        'DATA_INVALID',
        `${dir} has several ${role} IDX files (${matches.join(', ')}): keep one set per folder`,
      );
    }
    return matches[0] === undefined ? undefined : join(dir, matches[0]);
  };
  const trainImages = pick('trainImages');
  const trainLabels = pick('trainLabels');
  const testImages = pick('testImages');
  const testLabels = pick('testLabels');
  if (trainImages === undefined && trainLabels === undefined) return null;
  if (trainImages === undefined || trainLabels === undefined) {
    throw new CohortError(
      'DATA_INVALID',
      `${dir} has only half of the train images/labels IDX pair`,
    );
  }
  if ((testImages === undefined) !== (testLabels === undefined)) {
    throw new CohortError(
      'DATA_INVALID',
      `${dir} has only half of the test images/labels IDX pair`,
    );
  }
  return {
    trainImages,
    trainLabels,
    ...(testImages !== undefined && testLabels !== undefined ? { testImages, testLabels } : {}),
  };
}

/**
 * Loads IDX image/label pairs into train and test Datasets (test empty when absent). Both
 * splits get the same class count, so labels mean the same thing in each.
 */
export async function loadIdxFiles(files: IdxFiles): Promise<DatasetSplit> {
  const load = async (images: string, labels: string): Promise<Dataset> =>
    datasetFromIdx(
      parseIdx(await readDataFile(images), images),
      parseIdx(await readDataFile(labels), labels),
    );
  const train = await load(files.trainImages, files.trainLabels);
  const test =
    files.testImages !== undefined && files.testLabels !== undefined
      ? await load(files.testImages, files.testLabels)
      : emptyLike(train);
  if (test.count > 0 && test.shape.join('x') !== train.shape.join('x')) {
    throw new CohortError(
      'DATA_INVALID',
      `train images are ${train.shape.join('x')} but test images are ${test.shape.join('x')}`,
    );
  }
  const classes = Math.max(train.classes, test.classes);
  return { train: { ...train, classes }, test: { ...test, classes } };
}

/** A dataset with no examples and the shape and classes of `like`. */
export function emptyLike(like: Dataset): Dataset {
  return {
    images: new Float32Array(0),
    labels: new Uint8Array(0),
    count: 0,
    shape: like.shape,
    classes: like.classes,
  };
}
