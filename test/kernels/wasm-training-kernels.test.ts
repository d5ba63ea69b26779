import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../../shared/tfjs-kernels';

type Pad = 'same' | 'valid';
type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];

/** Deterministic pseudo-random values in [-1, 1) so cpu and wasm see identical inputs. */
function randomValues(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function maxRelativeDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst / Math.max(scale, 1e-12);
}

interface ConvCase {
  x: [number, number, number, number];
  k: [number, number];
  cout: number;
  stride: number;
  pad: Pad | ExplicitPad;
}

/** Gradients of sum(conv2d(x, w) * r) with respect to x and w, on the current backend. */
function convGradients(c: ConvCase): { dx: Float32Array; dw: Float32Array } {
  return tf.tidy(() => {
    const [n, h, w, cin] = c.x;
    const x = tf.tensor4d(randomValues(n * h * w * cin, 1), c.x);
    const filter = tf.tensor4d(randomValues(c.k[0] * c.k[1] * cin * c.cout, 2), [
      c.k[0],
      c.k[1],
      cin,
      c.cout,
    ]);
    const outShape = tf.conv2d(x, filter, c.stride, c.pad).shape;
    const r = tf.tensor(randomValues(outShape.reduce((p, q) => p * q, 1), 3), outShape);
    const f = (a: tf.Tensor4D, b: tf.Tensor4D): tf.Scalar =>
      tf.sum(tf.mul(tf.conv2d(a, b, c.stride, c.pad), r));
    const [dx, dw] = tf.grads(f)([x, filter]);
    return { dx: dx!.dataSync() as Float32Array, dw: dw!.dataSync() as Float32Array };
  });
}

async function onBackend<T>(name: string, fn: () => T): Promise<T> {
  await tf.setBackend(name);
  return fn();
}

const convCases: ConvCase[] = [
  { x: [2, 8, 8, 3], k: [3, 3], cout: 4, stride: 1, pad: 'same' },
  { x: [2, 8, 8, 3], k: [3, 3], cout: 4, stride: 1, pad: 'valid' },
  { x: [2, 9, 7, 2], k: [3, 3], cout: 5, stride: 2, pad: 'same' },
  { x: [2, 9, 7, 2], k: [3, 3], cout: 5, stride: 2, pad: 'valid' },
  { x: [3, 10, 10, 4], k: [5, 5], cout: 6, stride: 1, pad: 'same' },
  { x: [1, 11, 12, 3], k: [2, 4], cout: 3, stride: 2, pad: 'valid' },
  { x: [4, 6, 6, 1], k: [3, 3], cout: 8, stride: 2, pad: 'same' },
  { x: [2, 5, 5, 3], k: [1, 1], cout: 2, stride: 1, pad: 'valid' },
  // Padding wider than the filter: the input gradient falls back to the wasm kernel.
  {
    x: [2, 6, 6, 2],
    k: [3, 3],
    cout: 3,
    stride: 1,
    pad: [
      [0, 0],
      [3, 3],
      [1, 3],
      [0, 0],
    ],
  },
];

beforeAll(async () => {
  registerWasmTrainingKernels();
  await tf.setBackend('wasm');
});

afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('wasm training kernels', () => {
  it('registers Conv2DBackpropFilter on wasm and is idempotent', () => {
    const first = tf.getKernel('Conv2DBackpropFilter', 'wasm');
    expect(first).toBeDefined();
    const input = tf.getKernel('Conv2DBackpropInput', 'wasm');
    registerWasmTrainingKernels();
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBe(first);
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')).toBe(input);
    // The replaced kernels keep the setup of the originals they fall back to.
    expect(input?.setupFunc).toBeDefined();
    expect(tf.getKernel('MaxPoolGrad', 'wasm')?.setupFunc).toBeDefined();
  });

  it.each(convCases)('conv2d gradients match cpu: %o', async (c) => {
    const cpu = await onBackend('cpu', () => convGradients(c));
    const wasm = await onBackend('wasm', () => convGradients(c));
    expect(maxRelativeDifference(wasm.dw, cpu.dw)).toBeLessThan(1e-4);
    expect(maxRelativeDifference(wasm.dx, cpu.dx)).toBeLessThan(1e-4);
  });

  it.each([
    { shape: [2, 8, 8, 3], size: 2, stride: 2, pad: 'valid' as Pad },
    { shape: [2, 7, 9, 4], size: 2, stride: 2, pad: 'same' as Pad },
    { shape: [1, 9, 9, 2], size: 3, stride: 3, pad: 'valid' as Pad },
    { shape: [2, 8, 8, 3], size: 3, stride: 2, pad: 'same' as Pad },
    { shape: [1, 6, 6, 2], size: 2, stride: 1, pad: 'valid' as Pad },
  ])('maxPool gradient matches cpu: %o', async ({ shape, size, stride, pad }) => {
    const grad = (): Float32Array =>
      tf.tidy(() => {
        const x = tf.tensor4d(randomValues(shape.reduce((p, q) => p * q, 1), 7), shape as never);
        const outShape = tf.maxPool(x, size, stride, pad).shape;
        const r = tf.tensor(randomValues(outShape.reduce((p, q) => p * q, 1), 8), outShape);
        const g = tf.grad((a: tf.Tensor4D) => tf.sum(tf.mul(tf.maxPool(a, size, stride, pad), r)));
        return g(x).dataSync() as Float32Array;
      });
    const cpu = await onBackend('cpu', grad);
    const wasm = await onBackend('wasm', grad);
    expect(maxRelativeDifference(wasm, cpu)).toBeLessThan(1e-6);
  });
});

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
      for (let dx = 0; dx < 3; dx++) images[i * 64 + (cy + dy) * 8 + cx + dx] += 1;
    }
    labels[i * 2 + label] = 1;
  }
  return { xs: tf.tensor4d(images, [count, 8, 8, 1]), ys: tf.tensor2d(labels, [count, 2]) };
}

function smallCnn(): tf.Sequential {
  const model = tf.sequential();
  model.add(
    tf.layers.conv2d({
      inputShape: [8, 8, 1],
      filters: 4,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
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
      kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
    }),
  );
  model.add(tf.layers.flatten());
  model.add(
    tf.layers.dense({
      units: 2,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
    }),
  );
  model.compile({ optimizer: tf.train.adam(0.02), loss: 'categoricalCrossentropy' });
  return model;
}

describe('training on wasm', () => {
  it('a small CNN learns (loss falls) without leaking tensors', async () => {
    await tf.setBackend('wasm');
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

  it('gradient computations leave no tensors or wasm buffers behind', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor4d(randomValues(2 * 8 * 8 * 3, 4), [2, 8, 8, 3]);
    const w = tf.variable(tf.tensor4d(randomValues(3 * 3 * 3 * 4, 5), [3, 3, 3, 4]));
    const loss = (): tf.Scalar =>
      tf.sum(tf.maxPool(tf.relu(tf.conv2d(x, w as tf.Tensor4D, 2, 'same')), 2, 2, 'same'));
    tf.variableGrads(loss).grads[w.name]!.dispose(); // warm-up allocations
    const tensorsBefore = tf.memory().numTensors;
    const dataIdsBefore = tf.engine().backend.numDataIds();
    for (let i = 0; i < 3; i++) {
      const { value, grads } = tf.variableGrads(loss);
      value.dispose();
      tf.dispose(grads);
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(tf.engine().backend.numDataIds()).toBe(dataIdsBefore);
    x.dispose();
    w.dispose();
  });
});
