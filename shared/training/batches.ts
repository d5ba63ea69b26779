/**
 * Mini-batch tensors from a Dataset. Only one batch of pixels is copied into tensor memory at
 * a time, so a large shard never has to exist as one big tensor.
 */
import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../data/dataset';
import { CohortError } from '../errors';

/** One mini-batch: NHWC images and one-hot labels. The caller disposes both. */
export interface BatchTensors {
  xs: tf.Tensor4D;
  ys: tf.Tensor2D;
}

/** Images and one-hot labels of the examples at `indices` (copied in that order). */
export function makeBatch(
  data: Dataset,
  indices: ArrayLike<number>,
  classes: number,
): BatchTensors {
  const [h, w, c] = data.shape;
  const size = h * w * c;
  const images = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const src = indices[i]!;
    images.set(data.images.subarray(src * size, (src + 1) * size), i * size);
    labels[i] = data.labels[src]!;
  }
  return tf.tidy(() => ({
    xs: tf.tensor4d(images, [indices.length, h, w, c], 'float32'),
    ys: tf.oneHot(tf.tensor1d(labels, 'int32'), classes).toFloat() as tf.Tensor2D,
  }));
}

/**
 * Checks that the dataset fits the model (input shape, label range, consistent buffer sizes)
 * and returns the model's class count. DATA_INVALID otherwise: a mismatch caught here beats a
 * shape error deep inside a tfjs kernel.
 */
export function checkDatasetFitsModel(model: tf.LayersModel, data: Dataset): number {
  const input = model.inputs[0]?.shape;
  const output = model.outputs[0]?.shape;
  const classes = output?.[output.length - 1];
  if (input === undefined || input.length !== 4 || typeof classes !== 'number') {
    throw new CohortError('DATA_INVALID', 'model must take NHWC images and output class logits');
  }
  const [h, w, c] = data.shape;
  if (input[1] !== h || input[2] !== w || input[3] !== c) {
    throw new CohortError(
      'DATA_INVALID',
      `dataset images are ${h}x${w}x${c}, model expects ${input.slice(1).join('x')}`,
    );
  }
  if (data.images.length !== data.count * h * w * c || data.labels.length !== data.count) {
    throw new CohortError('DATA_INVALID', 'dataset buffers do not match its count and shape');
  }
  for (let i = 0; i < data.count; i++) {
    if (data.labels[i]! >= classes) {
      throw new CohortError(
        'DATA_INVALID',
        `label ${data.labels[i]} at ${i} >= ${classes} classes`,
      );
    }
  }
  return classes;
}
