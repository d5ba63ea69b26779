import { errorMessage, parseErrorCode } from '../shared/errors';
import type { ModelPayload } from '../shared/protocol/messages';
import { evaluateResSchema } from '../shared/protocol/messages';
import { parseMessage } from '../shared/protocol/validate';
import { evaluateAnswerLimit } from './answer-limits';
import type { RoundClient } from './client-registry';
import type { Logger } from './logger';

/** What federated evaluation needs. */
export interface EvaluatePhaseInput {
  round: number;
  roundId: string;
  clients: RoundClient[];
  model: ModelPayload;
  batchSize: number;
  deadlineMs: number;
  log: Logger;
}

/**
 * Federated evaluation: each client measures the new global model on its local test split;
 * the result is the example-weighted mean (an unweighted mean would let a client with ten
 * examples count as much as one with ten thousand). Null when no client reported. A client
 * that keeps its metrics private (METRICS_PRIVATE, secure sessions without
 * `--share-metrics`) simply contributes none: that is its choice, not a failure.
 */
export async function runEvaluatePhase(
  input: EvaluatePhaseInput,
): Promise<{ loss: number; accuracy: number; numExamples: number } | null> {
  let examples = 0;
  let lossSum = 0;
  let correctSum = 0;
  let privateClients = 0;
  await Promise.all(
    input.clients.map(async (client) => {
      try {
        const raw = await client.proxy.evaluate(
          {
            roundId: input.roundId,
            model: input.model,
            batchSize: input.batchSize,
            deadlineMs: input.deadlineMs,
          },
          { timeoutMs: input.deadlineMs, maxAnswerBytes: evaluateAnswerLimit() },
        );
        const res = parseMessage(evaluateResSchema, raw, 'evaluate result');
        if (res.status === 'error') {
          if (parseErrorCode(res.code) === 'METRICS_PRIVATE') privateClients++;
          else
            input.log.warn(
              `round ${input.round}: ${client.id.slice(0, 8)} refused evaluation: ${res.code}: ${res.message}`,
            );
          return;
        }
        if (res.roundId !== input.roundId || res.numExamples === 0) return;
        const n = Math.min(res.numExamples, client.info.testExamples);
        examples += n;
        lossSum += res.loss * n;
        correctSum += res.accuracy * n;
      } catch (error) {
        input.log.warn(
          `round ${input.round}: evaluation by ${client.id.slice(0, 8)} failed: ${errorMessage(error)}`,
        );
      }
    }),
  );
  if (privateClients > 0) {
    input.log.info(
      `round ${input.round}: ${privateClients} of ${input.clients.length} clients keep their metrics private`,
    );
  }
  if (examples === 0) return null;
  return { loss: lossSum / examples, accuracy: correctSum / examples, numExamples: examples };
}
