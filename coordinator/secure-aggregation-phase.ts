import { fromHex } from '../shared/bytes';
import { CohortError, errorMessage, isCohortError, parseErrorCode } from '../shared/errors';
import type { ErrorCode } from '../shared/errors';
import { packBinary, unpackBinary } from '../shared/protocol/binary-envelope';
import type { MaskRemover, SecAggConfig, SecAggPhase, SecAggResult } from '../shared/secagg';
import { MASKED_EXTRA_ELEMENTS, SecAggServerRound } from '../shared/secagg';
import { secAggAnswerLimit } from './answer-limits';
import type { RoundClient } from './client-registry';
import { isRemoteClient } from './cluster/remote-clients';
import type { Logger } from './logger';

/** What the secure phases need: the clients that finished training, and the round's config. */
export interface SecureAggregationInput {
  /** This coordinator's id (hash of its key), as in the registration challenge. */
  coordinatorId: string;
  /** Experiment name, as announced at registration. */
  experiment: string;
  round: number;
  roundId: string;
  modelHash: string;
  clients: RoundClient[];
  config: SecAggConfig;
  /** Deadline of each phase, in ms. */
  phaseTimeoutMs: number;
  log: Logger;
  signal?: AbortSignal;
  /** Told as each phase starts (for progress output and the dashboard). */
  onPhase?(phase: SecAggPhase): void;
  /** Where Unmasking removes the masks; default: on this thread. */
  removeMasks?: MaskRemover;
  /**
   * Cluster mode: where the partial sums of the masked inputs folded by other processes come
   * from. Absent: every client is local.
   */
  partials?: PartialSumSource;
}

/** The gateways' partial sums of one round (cluster mode). */
export interface PartialSumSource {
  /** The partial sum `gateway` folded for the round (validated by the caller). */
  collect(gateway: string, roundId: string): Promise<unknown>;
  /**
   * Plain rounds: the weighted mean and total weight of the updates `gateway` holds for the
   * listed clients, with the given weights (validated by the caller).
   */
  heldMean(
    gateway: string,
    roundId: string,
    weights: ReadonlyArray<{ clientId: string; weight: number }>,
  ): Promise<unknown>;
  /** Tells every gateway to forget the round's partial sums. */
  discard(roundId: string): void;
}

/** The outcome: the survivors' weighted mean, or why the round aborted; and who fell out where. */
export type SecureAggregationOutcome = (
  | { result: SecAggResult; failure: null }
  | { result: null; failure: { code: ErrorCode; reason: string } }
) & {
  /**
   * Clients that were lost or refused during the secure phases, with the reason code: every
   * client whose masked input is not in the sum is here (a phase ends only when each request
   * was answered, refused or timed out).
   */
  lost: Map<string, ErrorCode>;
};

/**
 * Drives the five secure-aggregation phases over socket.io for one round. The coordinator
 * only routes: each client's request comes from SecAggServerRound, each response goes back
 * into it (validated there), and every phase closes when all answered or its deadline passed.
 * Fewer than t survivors at any phase abort the round with nothing applied.
 */
export async function runSecureAggregation(
  input: SecureAggregationInput,
): Promise<SecureAggregationOutcome> {
  const lost = new Map<string, ErrorCode>();
  const byId = new Map(input.clients.map((c) => [c.id, c]));
  let server: SecAggServerRound;
  try {
    server = new SecAggServerRound({
      coordinatorId: input.coordinatorId,
      experiment: input.experiment,
      roundId: input.roundId,
      modelHash: input.modelHash,
      config: input.config,
      cohort: input.clients.map((c) => ({
        clientId: c.id,
        identityPublicKey: c.publicKey,
        ...(c.info.certificate !== undefined ? { certificate: fromHex(c.info.certificate) } : {}),
      })),
      ...(input.removeMasks ? { removeMasks: input.removeMasks } : {}),
    });
  } catch (error) {
    return { result: null, failure: failureOf(error), lost };
  }

  const exchange = async (phase: SecAggPhase, requests: Map<string, unknown>): Promise<void> => {
    input.onPhase?.(phase);
    // What an honest answer of this phase can weigh, from the round's config.
    const maxAnswerBytes = secAggAnswerLimit(phase, input.config);
    const fold =
      phase === 'maskedInput'
        ? {
            roundId: input.roundId,
            elements: input.config.vectorLength + MASKED_EXTRA_ELEMENTS,
            modulusBits: input.config.modulusBits,
          }
        : undefined;
    await Promise.all(
      [...requests].map(async ([clientId, body]) => {
        const client = byId.get(clientId);
        if (!client) return;
        try {
          const raw = await client.proxy.secagg(
            { phase, roundId: input.roundId, ...packBinary(body) },
            {
              timeoutMs: input.phaseTimeoutMs,
              maxAnswerBytes,
              signal: input.signal,
              ...(fold ? { fold } : {}),
            },
          );
          if (isErrorAck(raw)) {
            const code = parseErrorCode(raw.code) ?? 'INTERNAL';
            throw new CohortError(code, `client refused ${phase}: ${raw.message}`);
          }
          if (fold && isRemoteClient(client)) {
            // Its gateway kept the masked input in its partial sum; the signature came on.
            await server.receiveFoldedMaskedInput(clientId, client.gateway, unpackBinary(raw));
            return;
          }
          await server.receive(phase, clientId, unpackBinary(raw));
        } catch (error) {
          const code: ErrorCode = isCohortError(error) ? error.code : 'INTERNAL';
          if (!lost.has(clientId)) lost.set(clientId, code);
          input.log.warn(
            `round ${input.round}: ${phase} from ${clientId.slice(0, 8)} failed: ${errorMessage(error)}`,
          );
        }
      }),
    );
  };

  try {
    const all = new Map(input.clients.map((c) => [c.id, server.advertiseKeysRequest() as unknown]));
    await exchange('advertiseKeys', all);
    await exchange('shareKeys', server.closeAdvertiseKeys());
    await exchange('maskedInput', server.closeShareKeys());
    await foldPartialSums(server, input, lost);
    await exchange('consistencyCheck', server.closeMaskedInput());
    await exchange('unmasking', server.closeConsistencyCheck());
    const result = await server.finish();
    return { result, failure: null, lost };
  } catch (error) {
    server.abort();
    return { result: null, failure: failureOf(error), lost };
  } finally {
    input.partials?.discard(input.roundId);
  }
}

/**
 * Cluster mode: brings in each gateway's partial sum of the masked inputs it folded. A
 * gateway whose sum does not come, or does not hold exactly the inputs it reported, costs
 * those clients their place among the survivors (they are then treated as dropped).
 */
async function foldPartialSums(
  server: SecAggServerRound,
  input: SecureAggregationInput,
  lost: Map<string, ErrorCode>,
): Promise<void> {
  const partials = input.partials;
  if (!partials) return;
  const byGateway = new Map<string, string[]>();
  for (const client of input.clients) {
    if (!isRemoteClient(client) || lost.has(client.id)) continue;
    byGateway.set(client.gateway, [...(byGateway.get(client.gateway) ?? []), client.id]);
  }
  await Promise.all(
    [...byGateway].map(async ([gateway, clientIds]) => {
      try {
        server.foldPartialSum(gateway, await partials.collect(gateway, input.roundId));
      } catch (error) {
        const code: ErrorCode = isCohortError(error) ? error.code : 'INTERNAL';
        for (const id of clientIds)
          if (!lost.has(id)) lost.set(id, code === 'CLUSTER_UNAVAILABLE' ? 'CLIENT_DROPPED' : code);
        input.log.warn(
          `round ${input.round}: no partial sum from gateway ${gateway.slice(0, 8)}: ${errorMessage(error)}`,
        );
      }
    }),
  );
}

function isErrorAck(raw: unknown): raw is { status: 'error'; code: string; message: string } {
  if (typeof raw !== 'object' || raw === null) return false;
  const r = raw as Record<string, unknown>;
  return r.status === 'error' && typeof r.code === 'string' && typeof r.message === 'string';
}

function failureOf(error: unknown): { code: ErrorCode; reason: string } {
  if (isCohortError(error)) {
    return { code: error.code, reason: error.message.replace(`${error.code}: `, '') };
  }
  throw error;
}
