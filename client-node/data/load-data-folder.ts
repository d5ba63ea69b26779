import { stat } from 'node:fs/promises';
import type { DatasetSplit } from '../../shared/data/dataset';
import { CohortError } from '../../shared/errors';
import { findCifar10Files, loadCifar10Files } from './cifar10-folder';
import { findIdxFiles, loadIdxFiles } from './idx-folder';
import { findImageFolder, loadImageFolder } from './image-folder';
import type { ImageFolderOptions } from './image-folder';

/** What loadDataFolder looks for, in this order; quoted in its DATA_NOT_FOUND message. */
export const DATA_FOLDER_FORMATS =
  'CIFAR-10 binary batches (data_batch_N.bin[.gz] and test_batch.bin[.gz], directly or in ' +
  'cifar-10-batches-bin/), MNIST-style IDX pairs (train-images-idx3-ubyte[.gz] + ' +
  'train-labels-idx1-ubyte[.gz], and t10k-... for test), or one subfolder of PNG/JPEG ' +
  'images per class (optionally inside train/ and test/)';

/**
 * Loads a user's private dataset folder (`--data`), detecting its format: CIFAR-10 binary,
 * MNIST-style IDX, or an image folder (see loadImageFolder for its conventions). `shape` is
 * the model's input: image folders are converted to it, binary formats must already match.
 * A missing test part gives an empty test set (except image folders, which hold out 10%).
 * @throws CohortError DATA_NOT_FOUND (no such folder / no known format), DATA_INVALID.
 */
export async function loadDataFolder(
  dir: string,
  options: ImageFolderOptions = {},
): Promise<DatasetSplit> {
  let isFolder = false;
  try {
    isFolder = (await stat(dir)).isDirectory();
  } catch {
    throw new CohortError('DATA_NOT_FOUND', `data folder ${dir} does not exist`);
  }
  if (!isFolder) throw new CohortError('DATA_NOT_FOUND', `${dir} is not a folder`);

  const cifar = await findCifar10Files(dir);
  if (cifar !== null) return checkShape(await loadCifar10Files(cifar), dir, options.shape);
  const idx = await findIdxFiles(dir);
  if (idx !== null) return checkShape(await loadIdxFiles(idx), dir, options.shape);
  if ((await findImageFolder(dir)) !== null) return loadImageFolder(dir, options);
  throw new CohortError(
    'DATA_NOT_FOUND',
    `no dataset found in ${dir}: looked for ${DATA_FOLDER_FORMATS}`,
  );
}

function checkShape(
  data: DatasetSplit,
  dir: string,
  shape: readonly [number, number, number] | undefined,
): DatasetSplit {
  if (shape !== undefined && data.train.shape.join('x') !== shape.join('x')) {
    throw new CohortError(
      'DATA_INVALID',
      `${dir} holds ${data.train.shape.join('x')} images but the model expects ${shape.join('x')}: ` +
        'binary datasets are not resized; check the task (--task, or the one the coordinator runs)',
    );
  }
  return data;
}
