import type { FitConfigMessage, ModelPayload } from '../protocol/messages';

/** Progress of local training, reported so long rounds are visible on both ends. */
export interface TrainingProgress {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
  /** Fraction of the whole fit done, in [0, 1]. */
  fraction: number;
}

/** The result of one local fit, kept on the client until it is submitted. */
export interface LocalFitResult {
  /** Local weights minus the global weights they started from, flat float32. */
  delta: Float32Array;
  numExamples: number;
  trainLoss: number;
}

/** Metrics of a model on the party's local test split. */
export interface LocalEvaluation {
  numExamples: number;
  loss: number;
  accuracy: number;
}

/**
 * Everything the round logic needs from local training, behind one interface so the same
 * client core drives a tfjs model in Node, in a browser tab, or a scripted fake in tests.
 */
export interface Trainer {
  readonly task: string;
  readonly modelSpecHash: string;
  readonly backend: string;
  readonly trainExamples: number;
  readonly testExamples: number;
  /**
   * Loads the global model, trains on the private shard, returns the delta. Rejects with
   * CohortError MODEL_HASH_MISMATCH if the weights do not hash to the announced hash.
   * `hooks.shouldStop` lets a cancelled round end early.
   */
  fit(
    model: ModelPayload,
    config: FitConfigMessage,
    hooks: { onProgress?(p: TrainingProgress): void; shouldStop?(): boolean },
  ): Promise<LocalFitResult>;
  evaluate(model: ModelPayload, batchSize: number): Promise<LocalEvaluation>;
  dispose(): void;
}
