import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../../shared/tfjs-kernels';
import { randomTensor, randomValues } from './helpers';

/** Two classes of 8x8 images: a bright 3x3 blob in the left or the right half, plus noise. */
function blobData(count: number): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
  const noise = randomValues(count * 64, 11);
  const images = new Float32Array(count * 64);
  const labels = new Float32Array(count * 2);
  for (let i = 0; i < count; i++) {
    const label = i % 2;
    const cx = label === 0 ? 1 + (i % 3) : 4 + (i % 3);
    const cy = 1 + ((i >> 1) % 5);
    for (let p = 0; p < 64; p++) images[i * 64 + p] = 0.1 * noise[i * 64 + p]!;
    for (let dy = 0; dy < 3; dy++) {
      for (let dx = 0; dx < 3; dx++) images[i * 64 + (cy + dy) * 8 + cx + dx]! += 1;
    }
    labels[i * 2 + label] = 1;
  }
  return { xs: tf.tensor4d(images, [count, 8, 8, 1]), ys: tf.tensor2d(labels, [count, 2]) };
}

/** conv(same) -> maxPool -> conv(stride 2) -> dense: every kernel the tests exercise. */
function smallCnn(): tf.Sequential {
  const init = (seed: number): ReturnType<typeof tf.initializers.glorotUniform> =>
    tf.initializers.glorotUniform({ seed });
  const model = tf.sequential();
  model.add(
    tf.layers.conv2d({
      inputShape: [8, 8, 1],
      filters: 4,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(1),
    }),
  );
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(
    tf.layers.conv2d({
      filters: 6,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(2),
    }),
  );
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: init(3) }));
  model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy' });
  return model;
}

beforeAll(async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
});

describe('training on wasm', () => {
  it('a small CNN learns (loss falls) without leaking tensors', async () => {
    const { xs, ys } = blobData(64);
    const model = smallCnn();
    // The first epoch also creates the optimizer's state, so count tensors after it.
    const first = await model.fit(xs, ys, { epochs: 1, batchSize: 16, shuffle: false });
    const tensorsBefore = tf.memory().numTensors;
    const dataIdsBefore = tf.engine().backend.numDataIds();
    const rest = await model.fit(xs, ys, { epochs: 14, batchSize: 16, shuffle: false });
    const losses = [...(first.history.loss as number[]), ...(rest.history.loss as number[])];
    expect(losses[losses.length - 1]!).toBeLessThan(0.5 * losses[0]!);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(tf.engine().backend.numDataIds()).toBe(dataIdsBefore);
    model.dispose();
    xs.dispose();
    ys.dispose();
  });

  it('gradient computations leave no tensors or wasm buffers behind', () => {
    const x = randomTensor([2, 8, 8, 3], 4) as tf.Tensor4D;
    const w = tf.variable(randomTensor([3, 3, 3, 4], 5));
    const v = tf.variable(randomTensor([3, 3, 4, 6], 6));
    const loss = (): tf.Scalar =>
      tf.tidy(() => {
        const h = tf.maxPool(tf.relu(tf.conv2d(x, w as tf.Tensor4D, 1, 'same')), 2, 2, 'same');
        return tf.sum(tf.conv2d(h, v as tf.Tensor4D, 2, 'valid'));
      });
    tf.dispose(tf.variableGrads(loss)); // warm-up allocations
    const tensorsBefore = tf.memory().numTensors;
    const dataIdsBefore = tf.engine().backend.numDataIds();
    for (let i = 0; i < 3; i++) {
      const { value, grads } = tf.variableGrads(loss);
      value.dispose();
      tf.dispose(grads);
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(tf.engine().backend.numDataIds()).toBe(dataIdsBefore);
    tf.dispose([x, w, v]);
  });
});
