import type * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../shared/data/dataset';
import { evaluateModel } from '../shared/training/local-train';
import { applyWeights, floatsToBytes } from '../shared/weights/codec';
import type { RoundClient } from './client-registry';
import type { CoordinatorConfig } from './config';
import { runEvaluatePhase } from './evaluate-phase';
import type { Logger } from './logger';
import type { GlobalModel } from './round-runner';

/** What `--evaluation` resolves to once the mode and the coordinator's test set are known. */
export type ResolvedEvaluation = 'centralized' | 'federated' | 'both' | 'none';

/**
 * The evaluation a coordinator runs. `auto` means centralized when the coordinator holds a
 * test set; otherwise federated in plain mode, and none in secure mode: per-client metrics are
 * metadata, so a secure run collects them only when the experiment asks for them
 * (`federated` or `both`) and then only from clients that share them (`--share-metrics`).
 */
export function resolveEvaluation(
  evaluation: CoordinatorConfig['evaluation'],
  secureAggregation: boolean,
  hasTestSet: boolean,
): ResolvedEvaluation {
  if (evaluation !== 'auto') return evaluation;
  if (hasTestSet) return 'centralized';
  return secureAggregation ? 'none' : 'federated';
}

/**
 * Measures each round's new global model: centrally on the coordinator's test set, on the
 * clients' local test splits (federated, example-weighted), or both, as configured (see
 * {@link resolveEvaluation} for `auto`).
 */
export class GlobalModelEvaluator {
  private readonly mode: ResolvedEvaluation;

  constructor(
    private readonly config: CoordinatorConfig,
    private readonly evalModel: tf.LayersModel,
    private readonly testSet: Dataset | null,
    private readonly log: Logger,
  ) {
    this.mode = resolveEvaluation(config.evaluation, config.secureAggregation, testSet !== null);
    if (config.secureAggregation && config.evaluation === 'auto' && testSet === null) {
      log.warn(
        'secure aggregation: per-client metrics are not collected unless --evaluation ' +
          'federated|both is given (and clients pass --share-metrics); with no coordinator ' +
          'test set, rounds are not evaluated',
      );
    }
  }

  async evaluate(
    round: number,
    roundId: string,
    model: GlobalModel,
    clients: RoundClient[],
  ): Promise<{
    loss: number | null;
    accuracy: number | null;
    source: 'centralized' | 'federated';
    federatedAccuracy: number | null;
  } | null> {
    const mode = this.mode;
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
