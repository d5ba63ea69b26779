import { setMaxListeners } from 'node:events';
import { CohortError, errorMessage, isCohortError, parseErrorCode } from '../shared/errors';
import type { ErrorCode } from '../shared/errors';
import type { FitConfigMessage, FitIns, ModelPayload } from '../shared/protocol/messages';
import { fitResSchema, progressSchema } from '../shared/protocol/messages';
import { parseMessage } from '../shared/protocol/validate';
import { fitAnswerLimit } from './answer-limits';
import type { RoundClient } from './client-registry';
import { isRemoteClient } from './cluster/remote-clients';
import type { Logger } from './logger';

/** How one selected client's part in a round ended. */
export interface Participation {
  clientId: string;
  status: 'completed' | 'dropped' | 'rejected';
  numExamples: number;
  errorCode: ErrorCode | null;
}

/**
 * A fit answer that passed every check. Plain answers carry the example count, the train
 * loss and the update; secure answers carry none of them (they travel masked).
 */
export interface AcceptedFit {
  client: RoundClient;
  /** Plain mode only. */
  numExamples?: number;
  /** Plain mode only. */
  trainLoss?: number;
  /** Plain mode only; absent for a client of another process, whose gateway holds it. */
  update?: Uint8Array;
}

/** What the fit fan-out needs. */
export interface FitPhaseInput {
  round: number;
  roundId: string;
  cohort: RoundClient[];
  target: number;
  model: ModelPayload;
  config: FitConfigMessage;
  secure: boolean;
  deadlineMs: number;
  log: Logger;
  /**
   * Checks and consumes one answer before it counts (plain mode: shape, finiteness,
   * streaming accumulation). Throwing a CohortError rejects that client; the round goes on.
   */
  accept(fit: AcceptedFit): void;
  onProgress?(clientId: string, fraction: number): void;
  /** Aborts the whole phase (coordinator shutting down). */
  signal?: AbortSignal;
}

/** The fit phase's outcome: who contributed, who dropped or was rejected. */
export interface FitPhaseResult {
  accepted: AcceptedFit[];
  participations: Map<string, Participation>;
}

/**
 * Sends the global model to the cohort and gathers answers until `target` were accepted,
 * everyone answered or dropped, or the deadline passed. A silent client never stalls the
 * round; stragglers beyond the target are told to stop. Each answer is validated field by
 * field before it touches round state.
 */
export async function runFitPhase(input: FitPhaseInput): Promise<FitPhaseResult> {
  const participations = new Map<string, Participation>();
  const accepted: AcceptedFit[] = [];
  const controller = new AbortController();
  // One listener per cohort member: large cohorts are expected, not a leak.
  setMaxListeners(0, controller.signal);
  const deadline = setTimeout(() => controller.abort(), input.deadlineMs);
  const abort = () => controller.abort();
  input.signal?.addEventListener('abort', abort);
  const ins: FitIns = {
    roundId: input.roundId,
    round: input.round,
    model: input.model,
    config: input.config,
    deadlineMs: input.deadlineMs,
    secure: input.secure,
  };
  // A plain answer carries one float32 per parameter; a secure one carries no update at all.
  const maxAnswerBytes = fitAnswerLimit(input.model.manifest.length, input.secure);

  const record = (
    clientId: string,
    status: Participation['status'],
    numExamples: number,
    code: ErrorCode | null,
  ) => {
    if (!participations.has(clientId))
      participations.set(clientId, { clientId, status, numExamples, errorCode: code });
  };

  const one = async (client: RoundClient): Promise<void> => {
    const onProgress = (raw: unknown) => {
      const p = progressSchema.safeParse(raw);
      if (p.success && p.data.roundId === input.roundId)
        input.onProgress?.(client.id, p.data.fraction);
    };
    try {
      const raw = await client.proxy.fit(ins, {
        timeoutMs: input.deadlineMs,
        maxAnswerBytes,
        signal: controller.signal,
        onProgress,
      });
      if (controller.signal.aborted)
        throw new CohortError('UPDATE_STALE', 'answer arrived after the round closed');
      const res = parseMessage(fitResSchema, raw, 'fit result');
      if (res.status === 'error') {
        record(client.id, 'rejected', 0, parseErrorCode(res.code) ?? 'TRAINING_FAILED');
        input.log.warn(
          `client ${client.id.slice(0, 8)} failed round ${input.round}: ${res.message}`,
        );
        return;
      }
      if (res.roundId !== input.roundId)
        throw new CohortError('UPDATE_STALE', `update for round ${res.roundId}`);
      if (res.modelHash !== input.model.modelHash) {
        throw new CohortError('MODEL_HASH_MISMATCH', 'update was trained from a different model');
      }
      if (participations.has(client.id))
        throw new CohortError('UPDATE_DUPLICATE', 'second answer this round');
      let fit: AcceptedFit;
      if (input.secure) {
        if (res.update !== undefined) {
          throw new CohortError(
            'MESSAGE_INVALID',
            'secure mode: a plain update must never be sent',
          );
        }
        // The weight and the loss travel masked; in the clear they would be metadata we
        // promised not to collect.
        if (res.numExamples !== undefined || res.trainLoss !== undefined) {
          throw new CohortError(
            'MESSAGE_INVALID',
            'secure mode: a fit result carries no numExamples or trainLoss',
          );
        }
        fit = { client };
      } else {
        if (res.numExamples === undefined || res.trainLoss === undefined) {
          throw new CohortError(
            'MESSAGE_INVALID',
            'plain mode: fit result needs numExamples and trainLoss',
          );
        }
        const limit =
          input.config.maxExamples > 0 ? input.config.maxExamples : client.info.trainExamples;
        if (res.numExamples > Math.min(limit, client.info.trainExamples)) {
          throw new CohortError(
            'MESSAGE_INVALID',
            `claims ${res.numExamples} examples but registered ${client.info.trainExamples} (cap ${limit})`,
          );
        }
        // A client of another process: its gateway checked and holds the update (cluster mode).
        if (res.update === undefined && !isRemoteClient(client)) {
          throw new CohortError('UPDATE_SHAPE', 'plain mode: fit result carries no update');
        }
        fit = {
          client,
          numExamples: res.numExamples,
          trainLoss: res.trainLoss,
          ...(res.update !== undefined ? { update: res.update } : {}),
        };
      }
      if (accepted.length >= input.target)
        throw new CohortError('UPDATE_STALE', 'round already has enough updates');
      input.accept(fit);
      accepted.push(fit);
      // Secure mode: the coordinator never learns one client's example count (0 = unknown).
      record(client.id, 'completed', fit.numExamples ?? 0, null);
      if (accepted.length >= input.target) controller.abort();
    } catch (error) {
      const code: ErrorCode = isCohortError(error) ? error.code : 'INTERNAL';
      const dropped = code === 'CLIENT_DROPPED' || code === 'ROUND_DEADLINE';
      record(client.id, dropped ? 'dropped' : 'rejected', 0, code);
      if (!dropped || !controller.signal.aborted) {
        input.log.warn(
          `round ${input.round}: client ${client.id.slice(0, 8)} ${dropped ? 'dropped' : 'rejected'}: ${errorMessage(error)}`,
        );
      }
    }
  };

  try {
    await Promise.all(input.cohort.map(one));
  } finally {
    clearTimeout(deadline);
    input.signal?.removeEventListener('abort', abort);
  }
  for (const client of input.cohort) {
    if (participations.get(client.id)?.status !== 'completed') {
      client.proxy.cancel(input.roundId, 'round closed without your update');
    }
  }
  return { accepted, participations };
}
