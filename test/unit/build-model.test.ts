import * as tf from '@tensorflow/tfjs';
import { buildModel } from '../../shared/model/build-model';
import { getModelSpec } from '../../shared/model/registry';
import type { ModelSpec } from '../../shared/model/spec';
import { summarizeModelSpec } from '../../shared/model/validate-spec';
import { extractWeights } from '../../shared/weights/codec';

const TINY: ModelSpec = {
  input: [6, 6, 1],
  classes: 3,
  layers: [
    { type: 'conv2d', filters: 2, kernel: 3, activation: 'relu' },
    { type: 'maxpool', size: 2 },
    { type: 'flatten' },
    { type: 'dropout', rate: 0.5 },
    { type: 'dense', units: 3 },
  ],
};

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('buildModel', () => {
  it('builds the spec: output shape, parameter count, stable weight names', () => {
    const model = buildModel(TINY, 1);
    try {
      expect(model.outputs[0]!.shape).toEqual([null, 3]);
      expect(model.countParams()).toBe(summarizeModelSpec(TINY).parameters);
      expect(model.weights.map((w) => w.originalName)).toEqual([
        'l0_conv2d/kernel',
        'l0_conv2d/bias',
        'l4_dense/kernel',
        'l4_dense/bias',
      ]);
    } finally {
      model.dispose();
    }
  });

  it('gives identical weights for a seed, different ones for another seed', () => {
    const a = buildModel(TINY, 7);
    const b = buildModel(TINY, 7);
    const c = buildModel(TINY, 8);
    try {
      const wa = extractWeights(a);
      expect(extractWeights(b).data).toEqual(wa.data);
      expect(extractWeights(c).data).not.toEqual(wa.data);
      // Names do not depend on how many models the process built before.
      expect(extractWeights(b).manifest).toEqual(wa.manifest);
    } finally {
      for (const m of [a, b, c]) m.dispose();
    }
  });

  it('initialises kernels Glorot-uniform and biases at zero', () => {
    const model = buildModel(TINY, 3);
    try {
      const [kernel, bias, denseKernel] = model.getWeights().map((t) => t.dataSync());
      const convLimit = Math.sqrt(6 / (9 * 1 + 9 * 2));
      expect(Math.max(...kernel!.map(Math.abs))).toBeLessThanOrEqual(convLimit);
      expect(Math.max(...kernel!.map(Math.abs))).toBeGreaterThan(convLimit / 2);
      expect(Array.from(bias!)).toEqual([0, 0]);
      const denseLimit = Math.sqrt(6 / (8 + 3));
      expect(Math.max(...denseKernel!.map(Math.abs))).toBeLessThanOrEqual(denseLimit);
    } finally {
      model.dispose();
    }
  });

  it('returns logits for a batch and leaks no tensors', () => {
    const before = tf.memory().numTensors;
    const model = buildModel(TINY);
    const out = tf.tidy(() => model.predict(tf.ones([4, 6, 6, 1])) as tf.Tensor);
    expect(out.shape).toEqual([4, 3]);
    out.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('builds the registered mnist and cifar10 networks', () => {
    for (const task of ['mnist', 'cifar10']) {
      const spec = getModelSpec(task);
      const model = buildModel(spec);
      try {
        expect(model.countParams()).toBe(summarizeModelSpec(spec).parameters);
        expect(model.inputs[0]!.shape).toEqual([null, ...spec.input]);
      } finally {
        model.dispose();
      }
    }
  });

  it('refuses an invalid spec before building', () => {
    expect(() => buildModel({ ...TINY, classes: 4 })).toThrow(/CONFIG_INVALID/);
  });
});
