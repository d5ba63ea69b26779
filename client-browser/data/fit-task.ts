import type { Dataset, DatasetSplit } from '../../shared/data/dataset';
import { selectExamples } from '../../shared/data/dataset';
import { CohortError } from '../../shared/errors';
import { createRng } from '../../shared/random';
import type { ModelSpec } from '../../shared/model/spec';

/** Share of a tab's examples held out as its local test split. */
export const TEST_FRACTION = 0.1;

/**
 * Checks that `data` fits the task's model exactly (input shape and labels) and gives it the
 * model's class count. Only image folders are resized (they are decoded to the model's shape
 * as they are read); IDX and CIFAR files must already match, since a silently rescaled
 * dataset would train, badly, and the user would find out from the accuracy.
 * @throws CohortError DATA_INVALID naming what does not fit.
 */
export function fitToTask(data: Dataset, spec: ModelSpec, source: string): Dataset {
  const [h, w, c] = spec.input;
  const [dh, dw, dc] = data.shape;
  if (dh !== h || dw !== w || dc !== c) {
    throw new CohortError(
      'DATA_INVALID',
      `${source} holds ${dh}x${dw}x${dc} images, and this task's model takes ${h}x${w}x${c}` +
        ' (only image folders are resized)',
    );
  }
  let largest = -1;
  for (const label of data.labels) largest = Math.max(largest, label);
  if (largest >= spec.classes) {
    throw new CohortError(
      'DATA_INVALID',
      `${source} has label ${largest}, and this task has ${spec.classes} classes (0..${spec.classes - 1})`,
    );
  }
  if (data.count === 0) throw new CohortError('DATA_INVALID', `${source} holds no examples`);
  return data.classes === spec.classes ? data : { ...data, classes: spec.classes };
}

/**
 * Splits one dataset into local train and test parts: a seeded shuffle (the same data always
 * splits the same way), the last {@link TEST_FRACTION} becoming the test split, at least one
 * example once there are 10, none below that (every example is then needed for training).
 */
export function splitLocalTest(data: Dataset, seed = 0): DatasetSplit {
  const order = createRng(seed).shuffle(Array.from({ length: data.count }, (_, i) => i));
  const testCount = data.count >= 10 ? Math.max(1, Math.floor(data.count * TEST_FRACTION)) : 0;
  const cut = data.count - testCount;
  return {
    train: selectExamples(data, order.slice(0, cut)),
    test: selectExamples(data, order.slice(cut)),
  };
}

/** Several datasets of one shape as one (e.g. the five CIFAR-10 training batches). */
export function concatDatasets(parts: readonly Dataset[], source: string): Dataset {
  const first = parts[0];
  if (first === undefined) throw new CohortError('DATA_INVALID', `${source}: no examples`);
  if (parts.length === 1) return first;
  const size = first.shape[0] * first.shape[1] * first.shape[2];
  let count = 0;
  for (const part of parts) {
    if (part.shape.some((d, i) => d !== first.shape[i])) {
      throw new CohortError(
        'DATA_INVALID',
        `${source}: files hold images of different sizes (${first.shape.join('x')} and ${part.shape.join('x')})`,
      );
    }
    count += part.count;
  }
  const images = new Float32Array(count * size);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const part of parts) {
    images.set(part.images, at * size);
    labels.set(part.labels, at);
    at += part.count;
  }
  const classes = Math.max(...parts.map((part) => part.classes));
  return { images, labels, count, shape: first.shape, classes };
}
