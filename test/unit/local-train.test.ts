import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../../shared/data/dataset';
import { isCohortError } from '../../shared/errors';
import type { ErrorCode } from '../../shared/errors';
import { buildModel } from '../../shared/model/build-model';
import type { ModelSpec } from '../../shared/model/spec';
import { createRng } from '../../shared/random';
import type { FitConfig } from '../../shared/strategies/strategy';
import { evaluateModel, trainLocally } from '../../shared/training/local-train';
import { applyWeights, extractWeights } from '../../shared/weights/codec';

const SPEC: ModelSpec = {
  input: [4, 4, 1],
  classes: 2,
  layers: [
    { type: 'conv2d', filters: 2, kernel: 3, activation: 'relu' },
    { type: 'flatten' },
    { type: 'dense', units: 2 },
  ],
};

const FIT: FitConfig & { seed: number } = {
  epochs: 8,
  batchSize: 16,
  learningRate: 0.2,
  optimizer: 'sgd',
  proximalMu: 0,
  seed: 1,
};

/** Class 0 is bright on the left half, class 1 on the right half, plus noise. */
function separable(count: number, seed: number): Dataset {
  const rng = createRng(seed);
  const images = new Float32Array(count * 16);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const label = n % 2;
    labels[n] = label;
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) {
        const bright = x < 2 === (label === 0);
        images[n * 16 + y * 4 + x] = (bright ? 0.7 : 0.1) + 0.2 * rng.next();
      }
    }
  }
  return { images, labels, count, shape: [4, 4, 1], classes: 2 };
}

async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | undefined> {
  try {
    await promise;
  } catch (err) {
    if (isCohortError(err)) return err.code;
    throw err;
  }
  return undefined;
}

function distance(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(sum);
}

const train = separable(64, 1);
const test = separable(40, 2);

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('trainLocally', () => {
  it('lowers the loss and raises the accuracy on separable data', async () => {
    const model = buildModel(SPEC, 3);
    try {
      const before = await evaluateModel(model, test);
      const result = await trainLocally(model, train, FIT);
      const after = await evaluateModel(model, test);
      expect(result.numExamples).toBe(64);
      expect(result.steps).toBe(8 * 4);
      expect(after.loss).toBeLessThan(before.loss * 0.5);
      expect(after.accuracy).toBeGreaterThanOrEqual(0.95);
      expect(result.loss).toBeLessThan(before.loss);
    } finally {
      model.dispose();
    }
  });

  it('trains with adam too', async () => {
    const model = buildModel(SPEC, 3);
    try {
      await trainLocally(model, train, { ...FIT, optimizer: 'adam', learningRate: 0.05 });
      expect((await evaluateModel(model, test)).accuracy).toBeGreaterThanOrEqual(0.95);
    } finally {
      model.dispose();
    }
  });

  it('is reproducible for a seed', async () => {
    const a = buildModel(SPEC, 3);
    const b = buildModel(SPEC, 3);
    try {
      const ra = await trainLocally(a, train, { ...FIT, epochs: 2 });
      const rb = await trainLocally(b, train, { ...FIT, epochs: 2 });
      expect(rb.loss).toBe(ra.loss);
      expect(extractWeights(b).data).toEqual(extractWeights(a).data);
    } finally {
      for (const m of [a, b]) m.dispose();
    }
  });

  it('the proximal term keeps weights closer to where training started', async () => {
    const model = buildModel(SPEC, 3);
    try {
      const { manifest, data: w0 } = extractWeights(model);
      await trainLocally(model, train, FIT);
      const free = distance(extractWeights(model).data, w0);
      applyWeights(model, manifest, w0);
      await trainLocally(model, train, { ...FIT, proximalMu: 1 });
      const proximal = distance(extractWeights(model).data, w0);
      expect(free).toBeGreaterThan(0);
      expect(proximal).toBeLessThan(free * 0.9);
    } finally {
      model.dispose();
    }
  });

  it.each([
    ['sgd', 0],
    ['adam', 0],
    ['sgd', 0.5],
    ['adam', 0.5],
  ] as const)('leaks no tensors (%s, mu %p)', async (optimizer, proximalMu) => {
    const model = buildModel(SPEC, 3);
    try {
      const before = tf.memory().numTensors;
      await trainLocally(model, train, { ...FIT, epochs: 1, optimizer, proximalMu });
      await evaluateModel(model, test, 16);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      model.dispose();
    }
  });

  it('reports every batch, awaits async hooks and lets the event loop run', async () => {
    const model = buildModel(SPEC, 3);
    try {
      const seen: string[] = [];
      let stepsWhenTimerFired = -1;
      setTimeout(() => {
        stepsWhenTimerFired = seen.length;
      }, 0);
      const result = await trainLocally(
        model,
        separable(40, 4),
        { ...FIT, epochs: 2 },
        {
          onBatch: async (p) => {
            await Promise.resolve();
            expect(Number.isFinite(p.loss)).toBe(true);
            seen.push(`${p.epoch}.${p.batch}/${p.batches}`);
          },
        },
      );
      // 40 examples in batches of 16: 16, 16, 8.
      expect(seen).toEqual(['0.0/3', '0.1/3', '0.2/3', '1.0/3', '1.1/3', '1.2/3']);
      expect(result.steps).toBe(6);
      expect(stepsWhenTimerFired).toBeGreaterThanOrEqual(0);
      expect(stepsWhenTimerFired).toBeLessThan(6);
    } finally {
      model.dispose();
    }
  });

  it('stops on request with TRAINING_FAILED and cleans up', async () => {
    const model = buildModel(SPEC, 3);
    try {
      const before = tf.memory().numTensors;
      let steps = 0;
      const code = await codeOf(
        trainLocally(
          model,
          train,
          { ...FIT, optimizer: 'adam', proximalMu: 0.1 },
          { onBatch: () => void (steps += 1), shouldStop: () => steps >= 3 },
        ),
      );
      expect(code).toBe('TRAINING_FAILED');
      expect(steps).toBe(3);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      model.dispose();
    }
  });

  it('fails with TRAINING_FAILED when the loss diverges', async () => {
    const model = buildModel(SPEC, 3);
    try {
      const before = tf.memory().numTensors;
      expect(await codeOf(trainLocally(model, train, { ...FIT, learningRate: 1e30 }))).toBe(
        'TRAINING_FAILED',
      );
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      model.dispose();
    }
  });

  it('refuses bad configs, mismatched data and empty data', async () => {
    const model = buildModel(SPEC, 3);
    try {
      for (const bad of [
        { epochs: 0 },
        { batchSize: 0 },
        { learningRate: -1 },
        { learningRate: Number.NaN },
        { optimizer: 'rmsprop' as 'sgd' },
        { proximalMu: -1 },
      ]) {
        expect(await codeOf(trainLocally(model, train, { ...FIT, ...bad }))).toBe('CONFIG_INVALID');
      }
      const wrongShape: Dataset = { ...train, shape: [2, 8, 1] };
      expect(await codeOf(trainLocally(model, wrongShape, FIT))).toBe('DATA_INVALID');
      const badLabel: Dataset = { ...train, labels: new Uint8Array(64).fill(2) };
      expect(await codeOf(trainLocally(model, badLabel, FIT))).toBe('DATA_INVALID');
      const empty: Dataset = {
        ...train,
        images: new Float32Array(0),
        labels: new Uint8Array(0),
        count: 0,
      };
      expect(await codeOf(trainLocally(model, empty, FIT))).toBe('TRAINING_FAILED');
      expect(await evaluateModel(model, empty)).toEqual({ loss: 0, accuracy: 0, numExamples: 0 });
    } finally {
      model.dispose();
    }
  });
});

describe('evaluateModel', () => {
  it('computes loss and accuracy by hand across batches', async () => {
    const spec: ModelSpec = {
      input: [1, 1, 2],
      classes: 2,
      layers: [{ type: 'flatten' }, { type: 'dense', units: 2 }],
    };
    const model = buildModel(spec);
    try {
      // Identity kernel, zero bias: the logits are the two input values.
      const { manifest } = extractWeights(model);
      applyWeights(model, manifest, new Float32Array([1, 0, 0, 1, 0, 0]));
      const data: Dataset = {
        images: new Float32Array([1, 0, 0, 1, 1, 0]),
        labels: new Uint8Array([0, 1, 1]),
        count: 3,
        shape: [1, 1, 2],
        classes: 2,
      };
      const result = await evaluateModel(model, data, 2);
      // Right answers cost log(1 + e^-1), the wrong one log(1 + e).
      const expectedLoss = (2 * Math.log(1 + Math.exp(-1)) + Math.log(1 + Math.E)) / 3;
      expect(result.numExamples).toBe(3);
      expect(result.accuracy).toBeCloseTo(2 / 3, 6);
      expect(result.loss).toBeCloseTo(expectedLoss, 5);
    } finally {
      model.dispose();
    }
  });

  it('refuses a bad batch size', async () => {
    const model = buildModel(SPEC);
    try {
      expect(await codeOf(evaluateModel(model, test, 0))).toBe('CONFIG_INVALID');
    } finally {
      model.dispose();
    }
  });
});
