import { isCohortError } from '../errors';
import type { IdentityKeyPair } from '../identity';
import { clientIdFromPublicKey } from '../identity';
import type { SecAggPhase } from './client';
import { SECAGG_PHASES, SecAggClientSession } from './client';
import type { SecAggConfig } from './params';
import type { RandomFill } from './quantize';
import type { RoundLedger } from './round-ledger';
import type { SecAggServerPhase } from './server';
import { SecAggServerRound } from './server';
import type { MaskRemover, SecAggResult } from './unmask';

/**
 * A whole secure-aggregation round between one {@link SecAggServerRound} and honest
 * {@link SecAggClientSession}s, without sockets: for tests, benchmarks and simulations. The
 * hooks let a test play a dropping network or a malicious coordinator (rewrite the request one
 * client receives) while the real client code decides what to reveal.
 */

/** A protocol phase: the one a client stops answering at, or the one a hook is called for. */

/** One simulated client. */
export interface SimulatedSecAggClient {
  identity: IdentityKeyPair;
  update: Float32Array;
  exampleCount: number;
  /** Local train loss (default 0). */
  trainLoss?: number;
  /** The client goes silent from this phase on (never answers it nor any later one). */
  dropAt?: SecAggPhase;
  /** Model hash this client trained on (default: the round's). */
  modelHash?: string;
  /** Pinned identity keys for this client's session. */
  knownIdentityKeys?: Iterable<Uint8Array>;
  /** Client-side minimum cohort (default: 3, so small test cohorts run). */
  minParticipants?: number;
  ledger?: RoundLedger;
  randomFill?: RandomFill;
}

/** Interception points; all optional. */
export interface InMemoryRoundHooks {
  /** Rewrites the request `clientId` receives in `phase` (a malicious coordinator). */
  tamperRequest?(phase: SecAggPhase, clientId: string, request: unknown): unknown;
  /**
   * Sees each client response; return false to lose it in the network (client then drops),
   * or to deliver it yourself through `server` (a gateway that folds masked inputs).
   */
  deliverResponse?(
    phase: SecAggPhase,
    clientId: string,
    response: unknown,
    server: SecAggServerRound,
  ): boolean | Promise<boolean>;
  /** Called after the coordinator closes `phase` (e.g. to deliver a late message). */
  afterClose?(phase: SecAggPhase, server: SecAggServerRound): void | Promise<void>;
}

/** Options of {@link runInMemorySecAggRound}. */
export interface InMemoryRoundOptions {
  /** Default {@link IN_MEMORY_COORDINATOR_ID}. */
  coordinatorId?: string;
  /** Default {@link IN_MEMORY_EXPERIMENT}. */
  experiment?: string;
  roundId: string;
  modelHash: string;
  config: SecAggConfig;
  clients: readonly SimulatedSecAggClient[];
  hooks?: InMemoryRoundHooks;
  /** Where the coordinator removes masks (default: inline). */
  removeMasks?: MaskRemover;
}

/** How the round went: the result, or the coordinator's abort reason, and each client's fate. */
export interface InMemoryRoundReport {
  result?: SecAggResult;
  /** Why the coordinator aborted (e.g. SECAGG_BELOW_THRESHOLD); unset on success. */
  error?: unknown;
  /** Errors honest clients threw (their refusals), by client id. */
  clientErrors: Map<string, unknown>;
  /** Errors the coordinator threw when receiving a response, by client id. */
  serverRejections: Map<string, unknown>;
  /** Every response each client produced, by phase then client id. */
  responses: Map<SecAggPhase, Map<string, unknown>>;
  sessions: Map<string, SecAggClientSession>;
  server: SecAggServerRound;
  /** Phase the server reached. */
  serverPhase: SecAggServerPhase;
}

/** Coordinator id the in-memory driver uses unless told otherwise. */
export const IN_MEMORY_COORDINATOR_ID = '0'.repeat(32);
/** Experiment name the in-memory driver uses unless told otherwise. */
export const IN_MEMORY_EXPERIMENT = 'in-memory';

/** Runs one round to completion or abort; never throws for protocol failures (see the report). */
export async function runInMemorySecAggRound(
  options: InMemoryRoundOptions,
): Promise<InMemoryRoundReport> {
  const hooks = options.hooks ?? {};
  const coordinatorId = options.coordinatorId ?? IN_MEMORY_COORDINATOR_ID;
  const experiment = options.experiment ?? IN_MEMORY_EXPERIMENT;
  const server = new SecAggServerRound({
    coordinatorId,
    experiment,
    roundId: options.roundId,
    modelHash: options.modelHash,
    config: options.config,
    cohort: options.clients.map((c) => ({
      clientId: clientIdFromPublicKey(c.identity.publicKey),
      identityPublicKey: c.identity.publicKey,
    })),
    ...(options.removeMasks ? { removeMasks: options.removeMasks } : {}),
  });
  const clients = new Map<string, SimulatedSecAggClient>();
  const sessions = new Map<string, SecAggClientSession>();
  for (const c of options.clients) {
    const session = new SecAggClientSession({
      identity: c.identity,
      coordinatorId,
      experiment,
      roundId: options.roundId,
      modelHash: c.modelHash ?? options.modelHash,
      input: { update: c.update, exampleCount: c.exampleCount, trainLoss: c.trainLoss ?? 0 },
      minParticipants: c.minParticipants ?? 3,
      ...(c.knownIdentityKeys ? { knownIdentityKeys: c.knownIdentityKeys } : {}),
      ...(c.ledger ? { ledger: c.ledger } : {}),
      ...(c.randomFill ? { randomFill: c.randomFill } : {}),
    });
    clients.set(session.clientId, c);
    sessions.set(session.clientId, session);
  }
  const report: InMemoryRoundReport = {
    clientErrors: new Map(),
    serverRejections: new Map(),
    responses: new Map(SECAGG_PHASES.map((p) => [p, new Map<string, unknown>()] as const)),
    sessions,
    server,
    serverPhase: server.phase,
  };

  const silent = (id: string, phase: SecAggPhase): boolean => {
    const dropAt = clients.get(id)!.dropAt;
    return (
      (dropAt !== undefined && SECAGG_PHASES.indexOf(dropAt) <= SECAGG_PHASES.indexOf(phase)) ||
      report.clientErrors.has(id)
    );
  };

  const exchange = async (phase: SecAggPhase, requests: Map<string, unknown>): Promise<void> => {
    for (const [id, original] of requests) {
      if (silent(id, phase)) continue;
      // The hook gets a deep copy, so rewriting one client's request cannot leak into another's.
      const request = hooks.tamperRequest
        ? hooks.tamperRequest(phase, id, structuredClone(original))
        : original;
      let response: unknown;
      try {
        response = await sessions.get(id)!.answer(phase, request);
      } catch (err) {
        report.clientErrors.set(id, err);
        continue;
      }
      report.responses.get(phase)!.set(id, response);
      if (hooks.deliverResponse && !(await hooks.deliverResponse(phase, id, response, server)))
        continue;
      try {
        await server.receive(phase, id, response);
      } catch (err) {
        report.serverRejections.set(id, err);
      }
    }
  };

  try {
    const all = new Map(
      [...sessions.keys()].map((id) => [id, server.advertiseKeysRequest()] as const),
    );
    await exchange('advertiseKeys', all);
    const shareRequests = server.closeAdvertiseKeys();
    await hooks.afterClose?.('advertiseKeys', server);
    await exchange('shareKeys', shareRequests);
    const maskedRequests = server.closeShareKeys();
    await hooks.afterClose?.('shareKeys', server);
    await exchange('maskedInput', maskedRequests);
    const consistencyRequests = server.closeMaskedInput();
    await hooks.afterClose?.('maskedInput', server);
    await exchange('consistencyCheck', consistencyRequests);
    const unmaskingRequests = server.closeConsistencyCheck();
    await hooks.afterClose?.('consistencyCheck', server);
    await exchange('unmasking', unmaskingRequests);
    report.result = await server.finish();
    await hooks.afterClose?.('unmasking', server);
  } catch (err) {
    if (!isCohortError(err)) throw err;
    report.error = err;
  }
  report.serverPhase = server.phase;
  return report;
}
