/**
 * The "lightweight" part of the load bench's simulated clients: a Trainer that trains
 * nothing. It checks the model it is sent against its hash, as a real trainer does, then
 * returns a small deterministic delta, example count and loss, so 1,000 clients fit in one
 * process while everything around the training (sockets, registration, the five
 * secure-aggregation phases with real crypto) is the real client code.
 */
import type {
  LocalEvaluation,
  LocalFitResult,
  Trainer,
  TrainingProgress,
} from '../../shared/client/trainer';
import { CohortError } from '../../shared/errors';
import type { FitConfigMessage, ModelPayload } from '../../shared/protocol/messages';
import { bytesToFloats, hashWeights } from '../../shared/weights/codec';

/** One fit a client answered, so the bench can recompute the round's mean train loss. */
export interface FitRecord {
  numExamples: number;
  trainLoss: number;
}

/**
 * Client `index`'s example count (10..109) and train loss (in [0.1, 0.6)): fixed per client,
 * spread out, so the secure weighted mean of the loss can be checked against the plain one.
 */
export function loadClientShape(index: number): FitRecord {
  return {
    numExamples: 10 + ((index * 37) % 100),
    trainLoss: 0.1 + ((index * 7919) % 1000) / 2000,
  };
}

/** A fake trainer for client `index`; `onFit` hears of every fit, by round number. */
export class LoadTrainer implements Trainer {
  readonly task: string;
  readonly backend = 'load-bench';
  readonly trainExamples: number;
  readonly testExamples = 0;
  readonly modelSpecHash: string;

  constructor(
    private readonly index: number,
    options: { task: string; modelSpecHash: string },
    private readonly onFit: (round: number, fit: FitRecord) => void,
  ) {
    this.task = options.task;
    this.modelSpecHash = options.modelSpecHash;
    this.trainExamples = loadClientShape(index).numExamples;
  }

  /**
   * Verifies the weights, then returns 0.01 x sin(...) per element, distinct per client and
   * round (well inside the clip range). The round is the fit seed: the coordinator sends
   * seed + round, and the bench runs it with seed 0.
   */
  async fit(
    model: ModelPayload,
    config: FitConfigMessage,
    hooks: { onProgress?(p: TrainingProgress): void; shouldStop?(): boolean },
  ): Promise<LocalFitResult> {
    const weights = bytesToFloats(model.weights);
    if ((await hashWeights(model.manifest, weights)) !== model.modelHash) {
      throw new CohortError('MODEL_HASH_MISMATCH', 'the weights do not hash to the announced hash');
    }
    const round = config.seed;
    const delta = new Float32Array(model.manifest.length);
    for (let j = 0; j < delta.length; j++) {
      delta[j] = 0.01 * Math.sin(j * 0.37 + this.index + round * 1.3);
    }
    const shape = loadClientShape(this.index);
    hooks.onProgress?.({ epoch: 1, batch: 1, batches: 1, loss: shape.trainLoss, fraction: 1 });
    this.onFit(round, shape);
    return { delta, ...shape };
  }

  evaluate(): Promise<LocalEvaluation> {
    // The bench runs with --evaluation none, and secure sessions keep metrics private anyway.
    return Promise.reject(new CohortError('METRICS_PRIVATE', 'the load bench does not evaluate'));
  }

  dispose(): void {}
}
