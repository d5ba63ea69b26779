import type * as tf from '@tensorflow/tfjs';
import { CohortError } from '../errors';
import type { Dataset } from '../data/dataset';
import { limitExamples } from '../data/dataset';
import { buildModel } from '../model/build-model';
import type { ModelSpec } from '../model/spec';
import type { FitConfigMessage, ModelPayload } from '../protocol/messages';
import type { GradientHelpers } from '../training/gradient-helpers';
import { evaluateModel, trainLocally } from '../training/local-train';
import { applyWeights, bytesToFloats, extractWeights, hashWeights } from '../weights/codec';
import type { LocalEvaluation, LocalFitResult, Trainer, TrainingProgress } from './trainer';

/** What a tfjs trainer needs: the task's model and this party's private data. */
export interface TfjsTrainerOptions {
  task: string;
  spec: ModelSpec;
  modelSpecHash: string;
  backend: string;
  train: Dataset;
  test: Dataset;
  /** Threads that compute parts of each step's gradient (Node worker threads), if any. */
  helpers?: GradientHelpers;
}

/**
 * The real Trainer over TensorFlow.js, shared by the Node and browser clients: one model
 * instance reused across rounds (weights replaced each round), so a long run does not leak.
 */
export class TfjsTrainer implements Trainer {
  readonly task: string;
  readonly modelSpecHash: string;
  readonly backend: string;
  private readonly model: tf.LayersModel;

  constructor(private readonly options: TfjsTrainerOptions) {
    this.task = options.task;
    this.modelSpecHash = options.modelSpecHash;
    this.backend = options.backend;
    this.model = buildModel(options.spec);
  }

  get trainExamples(): number {
    return this.options.train.count;
  }

  get testExamples(): number {
    return this.options.test.count;
  }

  private async load(payload: ModelPayload): Promise<Float32Array> {
    const weights = bytesToFloats(payload.weights);
    const hash = await hashWeights(payload.manifest, weights);
    if (hash !== payload.modelHash) {
      throw new CohortError('MODEL_HASH_MISMATCH', 'received weights do not match the model hash');
    }
    applyWeights(this.model, payload.manifest, weights);
    return weights;
  }

  async fit(
    payload: ModelPayload,
    config: FitConfigMessage,
    hooks: { onProgress?(p: TrainingProgress): void; shouldStop?(): boolean },
  ): Promise<LocalFitResult> {
    const start = await this.load(payload);
    const data = limitExamples(
      this.options.train,
      config.maxExamples > 0 ? config.maxExamples : undefined,
    );
    if (data.count === 0) throw new CohortError('TRAINING_FAILED', 'no training examples');
    const result = await trainLocally(this.model, data, config, {
      onBatch: (p) =>
        hooks.onProgress?.({
          ...p,
          fraction: (p.epoch * p.batches + p.batch + 1) / (config.epochs * p.batches),
        }),
      ...(hooks.shouldStop ? { shouldStop: () => hooks.shouldStop!() } : {}),
      ...(this.options.helpers ? { helpers: this.options.helpers } : {}),
    });
    const { data: after } = extractWeights(this.model);
    const delta = new Float32Array(after.length);
    for (let i = 0; i < after.length; i++) delta[i] = after[i]! - start[i]!;
    return { delta, numExamples: result.numExamples, trainLoss: result.loss };
  }

  async evaluate(payload: ModelPayload, batchSize: number): Promise<LocalEvaluation> {
    await this.load(payload);
    if (this.options.test.count === 0) return { numExamples: 0, loss: 0, accuracy: 0 };
    return evaluateModel(this.model, this.options.test, batchSize);
  }

  dispose(): void {
    this.model.dispose();
  }
}
