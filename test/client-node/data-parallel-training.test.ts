import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '../../client-node/backend/select-backend';
import { WorkerGradientHelpers } from '../../client-node/training/worker-gradient-helpers';
import type { Dataset } from '../../shared/data/dataset';
import { isCohortError } from '../../shared/errors';
import { buildModel } from '../../shared/model/build-model';
import { getModelSpec } from '../../shared/model/registry';
import { createRng } from '../../shared/random';
import { splitBatch } from '../../shared/training/gradient-helpers';
import { trainLocally } from '../../shared/training/local-train';
import { extractWeights } from '../../shared/weights/codec';

/**
 * Data-parallel local training: worker threads compute parts of every step's gradient. It must
 * be the same training, not merely one that also learns: from the same weights, data and seed,
 * the weights after an epoch match the single-thread run up to float rounding, for SGD, Adam
 * and FedProx, with batches that do not split evenly.
 */

const WORKER = join(__dirname, '..', '..', 'dist', 'client-node', 'training', 'gradient-worker.js');
const spec = getModelSpec('mnist'); // no dropout: both runs are deterministic

function randomData(count: number, seed: number): Dataset {
  const rng = createRng(seed);
  const images = new Float32Array(count * 28 * 28).map(() => rng.next());
  const labels = new Uint8Array(count).map(() => rng.int(10));
  return { images, labels, count, shape: [28, 28, 1], classes: 10 };
}

describe('splitBatch', () => {
  it('gives contiguous parts whose sizes differ by at most one, extras first', () => {
    expect(splitBatch([1, 2, 3, 4, 5], 2)).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    expect(splitBatch([7, 8], 3)).toEqual([[7], [8], []]);
    expect(splitBatch([], 2)).toEqual([[], []]);
    expect(() => splitBatch([1], 0)).toThrow(/at least one part/);
  });
});

describe('trainLocally with worker-thread gradient helpers', () => {
  let helpers: WorkerGradientHelpers;

  beforeAll(async () => {
    await selectBackend({ preferred: 'wasm' });
    helpers = new WorkerGradientHelpers({ count: 2, spec, backend: 'wasm', workerScript: WORKER });
  });

  afterAll(async () => {
    await helpers.close();
  });

  const data = randomData(47, 3);
  const train = async (
    config: { optimizer: 'sgd' | 'adam'; proximalMu: number },
    withHelpers: boolean,
  ): Promise<{ weights: Float32Array; loss: number; steps: number }> => {
    const model = buildModel(spec, 5);
    try {
      const result = await trainLocally(
        model,
        data,
        { epochs: 2, batchSize: 13, learningRate: 0.05, seed: 9, ...config },
        withHelpers ? { helpers } : {},
      );
      return { weights: extractWeights(model).data, loss: result.loss, steps: result.steps };
    } finally {
      model.dispose();
    }
  };

  it.each([
    { optimizer: 'sgd' as const, proximalMu: 0 },
    { optimizer: 'adam' as const, proximalMu: 0 },
    { optimizer: 'sgd' as const, proximalMu: 0.5 },
  ])('%j: the same weights and loss as one thread', async (config) => {
    const before = tf.memory().numTensors;
    const single = await train(config, false);
    const parallel = await train(config, true);
    expect(tf.memory().numTensors).toBe(before);
    expect(parallel.steps).toBe(single.steps);
    expect(parallel.loss).toBeCloseTo(single.loss, 4);
    let worst = 0;
    let moved = 0;
    const start = extractWeights(buildModel(spec, 5)).data;
    for (let i = 0; i < single.weights.length; i++) {
      worst = Math.max(worst, Math.abs(parallel.weights[i]! - single.weights[i]!));
      moved = Math.max(moved, Math.abs(single.weights[i]! - start[i]!));
    }
    expect(moved).toBeGreaterThan(1e-3); // training changed the weights ...
    expect(worst).toBeLessThan(1e-5); // ... and both runs changed them the same way
  });

  it('a training thread that dies fails the step with TRAINING_FAILED', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-grad-'));
    const script = join(dir, 'dies.js');
    writeFileSync(
      script,
      "require('node:worker_threads').parentPort.on('message', () => process.exit(4));\n",
    );
    const broken = new WorkerGradientHelpers({
      count: 1,
      spec,
      backend: 'wasm',
      workerScript: script,
    });
    const model = buildModel(spec, 5);
    try {
      const error = await trainLocally(
        model,
        data,
        { epochs: 1, batchSize: 13, learningRate: 0.05, seed: 9, optimizer: 'sgd', proximalMu: 0 },
        { helpers: broken },
      ).catch((e: unknown) => e);
      expect(isCohortError(error) ? error.code : error).toBe('TRAINING_FAILED');
    } finally {
      model.dispose();
      await broken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('worker threads never keep a finished process alive', () => {
  it('a process that started training helpers and an unmask pool and never closed them exits', () => {
    const dist = join(__dirname, '..', '..', 'dist');
    const script = `
      const { WorkerGradientHelpers } = require(${JSON.stringify(join(dist, 'client-node', 'training', 'worker-gradient-helpers.js'))});
      const { UnmaskWorkerPool } = require(${JSON.stringify(join(dist, 'coordinator', 'unmask-pool.js'))});
      const { getModelSpec } = require(${JSON.stringify(join(dist, 'shared', 'model', 'registry.js'))});
      new WorkerGradientHelpers({ count: 1, spec: getModelSpec('mnist'), backend: 'wasm' });
      const pool = new UnmaskWorkerPool({ threads: 1 });
      pool.removeMasks(new Uint32Array(1 << 17), [{ seed: new Uint8Array(32), sign: 1 }])
        .then(() => console.log('unmasked'));
    `;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(run.stdout).toContain('unmasked');
    expect(run.signal).toBeNull(); // not killed by the timeout: it ended on its own
    expect(run.status).toBe(0);
  });
});
