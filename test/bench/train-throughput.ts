import type { Dataset } from '../../shared/data/dataset';
import { limitExamples } from '../../shared/data/dataset';
import { buildModel } from '../../shared/model/build-model';
import type { ModelSpec } from '../../shared/model/spec';
import type { GradientHelpers } from '../../shared/training/gradient-helpers';
import { trainLocally } from '../../shared/training/local-train';

/**
 * Images per second of Cohort's training loop (trainLocally, SGD) on a fresh model of
 * `spec`, after one untimed warm-up batch (kernel setup, first allocations and wasm heap
 * growth stay out of the number). Platform-free: the Node benchmarks and the bench page in
 * Chromium measure with this same function, so their rows compare like with like.
 */
export async function trainingImagesPerSecond(
  spec: ModelSpec,
  data: Dataset,
  options: { batch: number; epochs: number; helpers?: GradientHelpers },
): Promise<number> {
  const model = buildModel(spec, 1);
  const config = {
    batchSize: options.batch,
    learningRate: 0.01,
    optimizer: 'sgd' as const,
    proximalMu: 0,
    seed: 1,
  };
  const hooks = options.helpers ? { helpers: options.helpers } : {};
  try {
    // The warm-up also starts any helper threads and hands them the data.
    await trainLocally(model, limitExamples(data, options.batch), { ...config, epochs: 1 }, hooks);
    const start = performance.now();
    await trainLocally(model, data, { ...config, epochs: options.epochs }, hooks);
    const seconds = (performance.now() - start) / 1000;
    return (data.count * options.epochs) / seconds;
  } finally {
    model.dispose();
  }
}
