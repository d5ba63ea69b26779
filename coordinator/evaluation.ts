import type * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../shared/data/dataset';
import { evaluateModel } from '../shared/training/local-train';
import { applyWeights, floatsToBytes } from '../shared/weights/codec';
import type { ConnectedClient } from './client-registry';
import type { CoordinatorConfig } from './config';
import { runEvaluatePhase } from './evaluate-phase';
import type { Logger } from './logger';
import type { GlobalModel } from './round-runner';

/**
 * Measures each round's new global model: centrally on the coordinator's test set, on the
 * clients' local test splits (federated, example-weighted), or both, as configured. `auto`
 * means centralized when the coordinator holds a test set, federated otherwise.
 */
export class GlobalModelEvaluator {
  constructor(
    private readonly config: CoordinatorConfig,
    private readonly evalModel: tf.LayersModel,
    private readonly testSet: Dataset | null,
    private readonly log: Logger,
  ) {}

  async evaluate(
    round: number,
    roundId: string,
    model: GlobalModel,
    clients: ConnectedClient[],
  ): Promise<{
    loss: number | null;
    accuracy: number | null;
    source: 'centralized' | 'federated';
    federatedAccuracy: number | null;
  } | null> {
    const mode =
      this.config.evaluation === 'auto'
        ? this.testSet
          ? 'centralized'
          : 'federated'
        : this.config.evaluation;
    if (mode === 'none') return null;
    let central: { loss: number; accuracy: number } | null = null;
    let federated: { loss: number; accuracy: number } | null = null;
    if ((mode === 'centralized' || mode === 'both') && this.testSet) {
      applyWeights(this.evalModel, model.manifest, model.weights);
      central = await evaluateModel(this.evalModel, this.testSet, 256);
    }
    if (mode === 'federated' || mode === 'both') {
      federated = await runEvaluatePhase({
        round,
        roundId,
        clients,
        model: {
          modelHash: model.hash,
          manifest: model.manifest,
          weights: floatsToBytes(model.weights),
        },
        batchSize: 256,
        deadlineMs: this.config.evaluateTimeoutMs,
        log: this.log,
      });
    }
    const primary = central ?? federated;
    if (!primary) return null;
    return {
      loss: primary.loss,
      accuracy: primary.accuracy,
      source: central ? 'centralized' : 'federated',
      federatedAccuracy: federated?.accuracy ?? null,
    };
  }
}
