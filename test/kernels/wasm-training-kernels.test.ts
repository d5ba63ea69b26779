import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../../shared/tfjs-kernels';
import { makeConv2DBackpropFilterWasm } from '../../shared/tfjs-kernels/conv2d-backprop-filter';
import type { ConvCase } from './helpers';
import { convGradients, maxRelativeDifference, onBackend, randomTensor } from './helpers';

const convCases: ConvCase[] = [
  { x: [2, 8, 8, 3], k: [3, 3], cout: 4, stride: 1, pad: 'same' },
  { x: [2, 8, 8, 3], k: [3, 3], cout: 4, stride: 1, pad: 'valid' },
  { x: [2, 9, 7, 2], k: [3, 3], cout: 5, stride: 2, pad: 'same' },
  { x: [2, 9, 7, 2], k: [3, 3], cout: 5, stride: 2, pad: 'valid' },
  { x: [3, 10, 10, 6], k: [5, 5], cout: 6, stride: 1, pad: 'same' },
  { x: [2, 9, 9, 8], k: [3, 3], cout: 7, stride: 2, pad: 'valid' },
  { x: [2, 12, 11, 16], k: [3, 3], cout: 8, stride: 2, pad: 'same' },
  { x: [1, 11, 12, 3], k: [2, 4], cout: 3, stride: 2, pad: 'valid' },
  { x: [4, 6, 6, 1], k: [3, 3], cout: 8, stride: 2, pad: 'same' },
  { x: [2, 5, 5, 5], k: [1, 1], cout: 2, stride: 1, pad: 'valid' },
  // Padding wider than the filter: the input gradient falls back to the original kernel.
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

describe('registerWasmTrainingKernels', () => {
  it('registers Conv2DBackpropFilter, keeps setupFuncs, and is idempotent', () => {
    const filter = tf.getKernel('Conv2DBackpropFilter', 'wasm');
    const input = tf.getKernel('Conv2DBackpropInput', 'wasm');
    const pool = tf.getKernel('MaxPoolGrad', 'wasm');
    expect(filter).toBeDefined();
    registerWasmTrainingKernels();
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBe(filter);
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')).toBe(input);
    expect(tf.getKernel('MaxPoolGrad', 'wasm')).toBe(pool);
    // The replaced kernels fall back to originals that need their wasm bindings set up.
    expect(input?.setupFunc).toBeInstanceOf(Function);
    expect(pool?.setupFunc).toBeInstanceOf(Function);
  });
});

describe('conv2d gradients on wasm match the cpu backend', () => {
  it.each(convCases)('%j', async (c) => {
    const cpu = await onBackend('cpu', () => convGradients(c));
    const wasm = await onBackend('wasm', () => convGradients(c));
    expect(maxRelativeDifference(wasm.dw, cpu.dw)).toBeLessThan(1e-4);
    expect(maxRelativeDifference(wasm.dx, cpu.dx)).toBeLessThan(1e-4);
  });
});

describe('both filter-gradient formulations match the cpu backend', () => {
  const variants = {
    'dilated Conv2D': makeConv2DBackpropFilterWasm({ im2colMaxInChannels: 0 }),
    'chunked im2col': makeConv2DBackpropFilterWasm({
      im2colMaxInChannels: Infinity,
      maxPatchFloats: 500,
    }),
  };
  const cases = convCases.flatMap((c) =>
    Object.keys(variants).map((v) => [v, c] as [keyof typeof variants, ConvCase]),
  );

  it.each(cases)('%s %j', async (variant, c) => {
    const cpu = await onBackend('cpu', () => convGradients(c));
    await tf.setBackend('wasm');
    const dw = tf.tidy(() => {
      const x = randomTensor(c.x, 1);
      const filterShape = [c.k[0], c.k[1], c.x[3], c.cout];
      const r = randomTensor(
        tf.conv2d(
          x as tf.Tensor4D,
          tf.zeros<tf.Rank.R4>(filterShape as [number, number, number, number]),
          c.stride,
          c.pad,
        ).shape,
        3,
      );
      const out = variants[variant]({
        inputs: { x, dy: r },
        backend: tf.backend(),
        attrs: { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape },
      });
      const result = tf.engine().makeTensorFromTensorInfo(out as tf.TensorInfo);
      expect(result.shape).toEqual(filterShape);
      return result.dataSync() as Float32Array;
    });
    expect(maxRelativeDifference(dw, cpu.dw)).toBeLessThan(1e-4);
  });
});

describe('maxPool gradient on wasm matches the cpu backend', () => {
  it.each([
    { shape: [2, 8, 8, 3], size: 2, stride: 2, pad: 'valid' as const },
    { shape: [2, 7, 9, 4], size: 2, stride: 2, pad: 'same' as const },
    { shape: [1, 9, 9, 2], size: 3, stride: 3, pad: 'valid' as const },
    // Overlapping windows: the wasm 4.22 kernel drops some of these gradients.
    { shape: [2, 8, 8, 3], size: 3, stride: 2, pad: 'same' as const },
    { shape: [1, 6, 6, 2], size: 2, stride: 1, pad: 'valid' as const },
  ])('%j', async ({ shape, size, stride, pad }) => {
    const grad = (): Float32Array =>
      tf.tidy(() => {
        const x = randomTensor(shape, 7) as tf.Tensor4D;
        const r = randomTensor(tf.maxPool(x, size, stride, pad).shape, 8);
        const g = tf.grad((a: tf.Tensor) =>
          tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, size, stride, pad), r)),
        );
        return g(x).dataSync() as Float32Array;
      });
    const cpu = await onBackend('cpu', grad);
    const wasm = await onBackend('wasm', grad);
    expect(maxRelativeDifference(wasm, cpu)).toBeLessThan(1e-6);
  });
});
