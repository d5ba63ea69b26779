import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../../shared/tfjs-kernels';
import { makeConv2DBackpropFilterWasm } from '../../shared/tfjs-kernels/conv2d-backprop-filter';
import { leadingAxesCount } from '../../shared/tfjs-kernels/sum-leading-axes';
import type { ConvCase } from './helpers';
import { convGradients, maxRelativeDifference, onBackend, randomTensor } from './helpers';

/** NHWC explicit padding: [top, bottom] rows and [left, right] columns. */
function explicitPad(rows: [number, number], columns: [number, number]): ConvCase['pad'] {
  return [[0, 0], rows, columns, [0, 0]];
}

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
  // One channel at stride 1, as in the mnist network's first layer.
  { x: [2, 10, 9, 1], k: [5, 5], cout: 4, stride: 1, pad: 'valid' },
  { x: [2, 9, 10, 1], k: [5, 3], cout: 3, stride: 1, pad: 'same' },
  { x: [1, 6, 5, 1], k: [3, 3], cout: 2, stride: 1, pad: explicitPad([2, 1], [3, 0]) },
  // Padding wider than the filter: the input gradient falls back to the original kernel.
  { x: [2, 6, 6, 2], k: [3, 3], cout: 3, stride: 1, pad: explicitPad([3, 3], [1, 3]) },
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
    // 2x2/2 over odd sizes: the last row and column lie in no window.
    { shape: [2, 7, 9, 3], size: 2, stride: 2, pad: 'valid' as const },
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

describe('maxPool gradient ties go where the cpu backend sends them', () => {
  it.each([
    { size: 2, stride: 2 },
    { size: 3, stride: 2 },
  ])('%j', async ({ size, stride }) => {
    // Values on a coarse grid: most windows hold their maximum more than once.
    const grad = (): Float32Array =>
      tf.tidy(() => {
        const x = tf.round(tf.mul(randomTensor([2, 8, 8, 3], 11), 2)) as tf.Tensor4D;
        const r = randomTensor(tf.maxPool(x, size, stride, 'valid').shape, 12);
        const g = tf.grad((a: tf.Tensor) =>
          tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, size, stride, 'valid'), r)),
        );
        return g(x).dataSync() as Float32Array;
      });
    const cpu = await onBackend('cpu', grad);
    const wasm = await onBackend('wasm', grad);
    expect(maxRelativeDifference(wasm, cpu)).toBeLessThan(1e-6);
  });
});

describe('matMul with transposed operands on wasm matches the cpu backend', () => {
  it.each([
    { a: [5, 7], b: [5, 3], transposeA: true, transposeB: false },
    { a: [4, 6], b: [3, 6], transposeA: false, transposeB: true },
    { a: [6, 4], b: [3, 6], transposeA: true, transposeB: true },
    { a: [2, 5, 7], b: [2, 5, 3], transposeA: true, transposeB: false },
    { a: [2, 4, 6], b: [2, 3, 6], transposeA: false, transposeB: true },
    { a: [3, 4], b: [4, 2], transposeA: false, transposeB: false },
  ])('%j', async ({ a, b, transposeA, transposeB }) => {
    const product = (): Float32Array =>
      tf.tidy(
        () =>
          tf
            .matMul(randomTensor(a, 11), randomTensor(b, 12), transposeA, transposeB)
            .dataSync() as Float32Array,
      );
    const cpu = await onBackend('cpu', product);
    const wasm = await onBackend('wasm', product);
    expect(wasm).toHaveLength(cpu.length);
    expect(maxRelativeDifference(wasm, cpu)).toBeLessThan(1e-5);
  });

  it("gives a dense layer's gradients as the cpu backend does, and frees its intermediates", async () => {
    const grads = (): Float32Array[] =>
      tf.tidy(() => {
        const x = randomTensor([8, 20], 13);
        const w = randomTensor([20, 6], 14);
        const r = randomTensor([8, 6], 15);
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.matMul(a, b), r)));
        return g([x, w]).map((t) => t.dataSync() as Float32Array);
      });
    const cpu = await onBackend('cpu', grads);
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const wasm = grads();
    expect(tf.memory().numTensors).toBe(before);
    for (const [i, g] of wasm.entries()) {
      expect(maxRelativeDifference(g, cpu[i]!)).toBeLessThan(1e-5);
    }
  });
});

describe('sum over leading axes on wasm matches the cpu backend', () => {
  it.each([
    { shape: [4, 5, 6, 3], axis: [0, 1, 2], keepDims: false },
    { shape: [4, 5, 6, 3], axis: [2, 0, 1], keepDims: true },
    { shape: [7, 9], axis: [0], keepDims: false },
    { shape: [7, 9], axis: [-2], keepDims: true },
    // Not leading axes, or all of them: the original kernel.
    { shape: [4, 5, 6], axis: [1, 2], keepDims: false },
    { shape: [4, 5, 6], axis: [0, 2], keepDims: false },
    { shape: [4, 5], axis: [0, 1], keepDims: false },
  ])('%j', async ({ shape, axis, keepDims }) => {
    const sum = (): { values: Float32Array; shape: number[] } =>
      tf.tidy(() => {
        const s = tf.sum(randomTensor(shape, 21), axis, keepDims);
        return { values: s.dataSync() as Float32Array, shape: s.shape };
      });
    const cpu = await onBackend('cpu', sum);
    const wasm = await onBackend('wasm', sum);
    expect(wasm.shape).toEqual(cpu.shape);
    expect(maxRelativeDifference(wasm.values, cpu.values)).toBeLessThan(1e-5);
  });

  it('counts only an exact set of leading axes', () => {
    expect(leadingAxesCount([0, 1, 2], 4)).toBe(3);
    expect(leadingAxesCount([1, 0], 3)).toBe(2);
    expect(leadingAxesCount(-3, 3)).toBe(1);
    expect(leadingAxesCount([1, 2], 3)).toBe(0);
    expect(leadingAxesCount([0, 0], 3)).toBe(0);
    expect(leadingAxesCount([0, 2], 3)).toBe(0);
  });
});
