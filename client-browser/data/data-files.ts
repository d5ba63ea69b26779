import { parseCifar10Binary } from '../../shared/data/cifar10-binary';
import type { Dataset, DatasetSplit } from '../../shared/data/dataset';
import type { IdxArray } from '../../shared/data/idx';
import { datasetFromIdx, parseIdx } from '../../shared/data/idx';
import { CohortError } from '../../shared/errors';
import type { ModelSpec } from '../../shared/model/spec';
import { concatDatasets, fitToTask, splitLocalTest } from './fit-task';
import { readFileBytes, withoutGzip } from './read-file-bytes';

/** Which part a file belongs to: names with `t10k` or `test` (MNIST, CIFAR-10) are test data. */
type Part = 'train' | 'test';

interface IdxPair {
  images?: { name: string; idx: IdxArray };
  labels?: { name: string; idx: IdxArray };
}

/**
 * Reads the files a user picked: IDX image and label files (MNIST's format, `.gz` or not)
 * and/or CIFAR-10 binary batches (`.bin`), parsed with the same code as the Node client
 * (shared/data). Files named like a test set (`t10k-*`, `test_batch.bin`) become the local
 * test split when training files are picked too; otherwise 10% is held out. Nothing leaves
 * the tab: the files are read in memory only.
 * @throws CohortError DATA_INVALID for an unreadable, unpaired or mis-shaped file.
 */
export async function loadDataFiles(
  files: readonly File[],
  spec: ModelSpec,
): Promise<DatasetSplit> {
  if (files.length === 0) throw new CohortError('DATA_INVALID', 'no files were picked');
  const idx: Record<Part, IdxPair> = { train: {}, test: {} };
  const cifar: Record<Part, Dataset[]> = { train: [], test: [] };
  for (const file of [...files].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const name = withoutGzip(file.name);
    if (/\.tar$/i.test(name) || /\.tgz$/i.test(file.name)) {
      throw new CohortError(
        'DATA_INVALID',
        `${file.name} is an archive: extract it and pick the files inside (IDX files or CIFAR-10 .bin batches)`,
      );
    }
    const part: Part = /t10k|test/i.test(name) ? 'test' : 'train';
    const bytes = await readFileBytes(file);
    if (/\.bin$/i.test(name)) {
      cifar[part].push(parseCifar10Binary(bytes, file.name));
      continue;
    }
    const parsed = parseIdx(bytes, file.name);
    const role = parsed.dims.length === 1 ? 'labels' : 'images';
    const existing = idx[part][role];
    if (existing !== undefined) {
      throw new CohortError(
        'DATA_INVALID',
        `${existing.name} and ${file.name} are both ${part} ${role} files: pick one of each`,
      );
    }
    idx[part][role] = { name: file.name, idx: parsed };
  }
  const parts: Record<Part, Dataset | null> = {
    train: partDataset(idx.train, cifar.train, 'train'),
    test: partDataset(idx.test, cifar.test, 'test'),
  };
  const source = files.length === 1 ? files[0]!.name : `the ${files.length} picked files`;
  if (parts.train !== null && parts.test !== null) {
    return {
      train: fitToTask(parts.train, spec, source),
      test: fitToTask(parts.test, spec, source),
    };
  }
  // Only one part picked (e.g. just the test set): it is all this tab has, so split it.
  const all = parts.train ?? parts.test;
  if (all === null) throw new CohortError('DATA_INVALID', `${source}: no examples found`);
  return splitLocalTest(fitToTask(all, spec, source));
}

function partDataset(pair: IdxPair, batches: Dataset[], part: Part): Dataset | null {
  const datasets = [...batches];
  if (pair.images !== undefined || pair.labels !== undefined) {
    if (pair.images === undefined || pair.labels === undefined) {
      const present = (pair.images ?? pair.labels)!.name;
      const missing = pair.images === undefined ? 'images' : 'labels';
      throw new CohortError(
        'DATA_INVALID',
        `${present} has no matching ${part} ${missing} IDX file: pick both (e.g. train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz)`,
      );
    }
    datasets.push(datasetFromIdx(pair.images.idx, pair.labels.idx));
  }
  if (datasets.length === 0) return null;
  return concatDatasets(datasets, `the ${part} files`);
}
