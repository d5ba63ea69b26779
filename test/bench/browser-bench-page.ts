/**
 * The page side of `npm run bench -- browser`, bundled for Chromium: times Cohort's real
 * training loop (trainLocally) per tfjs backend on random data of a built-in model, and runs
 * the join page's own automatic backend choice, so the suite reports what a tab would pick.
 */
import * as tf from '@tensorflow/tfjs';
import { chooseBackend } from '../../client-browser/backend/choose-backend';
import type { BrowserBackend } from '../../client-browser/backend/choose-backend';
import { randomDataset } from '../../shared/data/random-dataset';
import { trainingImagesPerSecond } from './train-throughput';
import { getModelSpec } from '../../shared/model/registry';
import type { TaskName } from '../../shared/model/registry';

/** One measurement, as JSON. */
export interface PageThroughput {
  imgPerSec: number | null;
  error: string | null;
  /** What the backend runs on (threads, SIMD), when known. */
  detail: string | null;
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
  try {
    const imgPerSec = await trainingImagesPerSecond(
      getModelSpec(task),
      randomDataset(getModelSpec(task), images),
      {
        batch,
        epochs: 1,
      },
    );
    const isolation = crossOriginIsolated ? 'cross-origin isolated' : 'not isolated';
    const detail = backend === 'wasm' ? `${tf.getBackend()} (${isolation})` : tf.getBackend();
    return { imgPerSec, error: null, detail };
  } catch (error) {
    return {
      imgPerSec: null,
      error: error instanceof Error ? error.message : String(error),
      detail: null,
    };
  }
}
