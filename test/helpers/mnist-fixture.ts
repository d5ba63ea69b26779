import { loadTaskData } from '../../client-node/data/load-task-data';
import type { Dataset } from '../../shared/data/dataset';
import { limitExamples } from '../../shared/data/dataset';

let cached: Promise<{ train: Dataset; test: Dataset }> | null = null;

/** A small slice of the real bundled MNIST, loaded once per test file. */
export function smallMnist(
  trainCount: number,
  testCount: number,
): Promise<{ train: Dataset; test: Dataset }> {
  const full = (cached ??= loadTaskData('mnist', {}));
  return full.then(({ train, test }) => ({
    train: limitExamples(train, trainCount),
    test: limitExamples(test, testCount),
  }));
}
