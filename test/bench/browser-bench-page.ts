/**
 * The page side of `npm run bench -- browser`, bundled for Chromium: times Cohort's real
 * training loop (trainLocally) per tfjs backend on random data of a built-in model, and runs
 * the join page's own automatic backend choice, so the suite reports what a tab would pick.
 */
import * as tf from '@tensorflow/tfjs';
import { chooseBackend } from '../../client-browser/backend/choose-backend';
import type { BrowserBackend } from '../../client-browser/backend/choose-backend';
import type { Dataset } from '../../shared/data/dataset';
import { buildModel } from '../../shared/model/build-model';
import { getModelSpec } from '../../shared/model/registry';
import type { TaskName } from '../../shared/model/registry';
import type { ModelSpec } from '../../shared/model/spec';
import { createRng } from '../../shared/random';
import { trainLocally } from '../../shared/training/local-train';

/** One measurement, as JSON. */
export interface PageThroughput {
  imgPerSec: number | null;
  error: string | null;
  /** What the backend runs on (threads, SIMD), when known. */
  detail: string | null;
}

function randomDataset(spec: ModelSpec, count: number): Dataset {
  const [h, w, c] = spec.input;
  const rng = createRng(7);
  const images = new Float32Array(count * h * w * c);
  for (let i = 0; i < images.length; i++) images[i] = rng.next();
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = rng.int(spec.classes);
  return { images, labels, count, shape: [h, w, c], classes: spec.classes };
}

/** The automatic choice a join page makes for `task` here (its own short benchmark). */
export async function autoChoice(task: TaskName): Promise<{ backend: string; reason: string }> {
  const choice = await chooseBackend(getModelSpec(task));
  return { backend: choice.backend, reason: choice.reason };
}

/**
 * Images/second of trainLocally on `backend`: one untimed warm-up batch, then `images`
 * images at `batch` (SGD, as the Node training suite measures).
 */
export async function throughput(
  task: TaskName,
  backend: BrowserBackend,
  images: number,
  batch: number,
): Promise<PageThroughput> {
  try {
    // The wasm binaries and Cohort's kernels are set up by the choice module on first use.
    await chooseBackend(getModelSpec(task), { forced: backend });
  } catch (error) {
    return {
      imgPerSec: null,
      error: error instanceof Error ? error.message : String(error),
      detail: null,
    };
  }
  const spec = getModelSpec(task);
  const model = buildModel(spec, 1);
  const config = {
    batchSize: batch,
    learningRate: 0.01,
    optimizer: 'sgd' as const,
    proximalMu: 0,
    seed: 1,
  };
  try {
    await trainLocally(model, randomDataset(spec, batch), { ...config, epochs: 1 });
    const data = randomDataset(spec, images);
    const start = performance.now();
    await trainLocally(model, data, { ...config, epochs: 1 });
    const seconds = (performance.now() - start) / 1000;
    const threads =
      backend === 'wasm'
        ? ` (${crossOriginIsolated ? 'cross-origin isolated' : 'not isolated'})`
        : '';
    return { imgPerSec: images / seconds, error: null, detail: `${tf.getBackend()}${threads}` };
  } catch (error) {
    return {
      imgPerSec: null,
      error: error instanceof Error ? error.message : String(error),
      detail: null,
    };
  } finally {
    model.dispose();
  }
}
