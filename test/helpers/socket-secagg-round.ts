import { isCohortError } from '../../shared/errors';
import type { SecAggConfig, SecAggPhase, SecAggResult } from '../../shared/secagg';
import { SECAGG_PHASES, SecAggServerRound } from '../../shared/secagg';
import type { MaliciousCoordinator } from './malicious-coordinator';
import { isErrorAck } from './malicious-coordinator';

/**
 * Drives one secure-aggregation round from a {@link MaliciousCoordinator} over real sockets:
 * an honest SecAggServerRound computes every request and checks every answer, and a hook may
 * replace (or multiply) the request any client receives. Like a pushy attacker, the driver
 * keeps sending every client that refused the request of the next phases anyway, so a test
 * can check that a refusal is final. Every acknowledgement is recorded as it arrived. The
 * round is bound to the harness's coordinator id and experiment, as its clients registered.
 */

/** Options of {@link runSocketSecAggRound}. */
export interface SocketRoundOptions {
  coordinator: MaliciousCoordinator;
  roundId: string;
  modelHash: string;
  config: SecAggConfig;
  /** Cohort member ids (registered with the coordinator). */
  cohort: readonly string[];
  /**
   * The requests `clientId` receives in `phase`, sent one after the other (default: the honest
   * one). `honest` is a deep copy, free to edit.
   */
  requests?(phase: SecAggPhase, clientId: string, honest: unknown): unknown[];
}

/** Everything that happened in the round. */
export interface SocketRoundReport {
  /** Every acknowledgement, by phase then client, in the order received. */
  acks: Map<SecAggPhase, Map<string, unknown[]>>;
  /** The first error acknowledgement of each client: where and with which code. */
  refusals: Map<string, { phase: SecAggPhase; code: string }>;
  /** Answers the honest server round refused, by client. */
  serverRejections: Map<string, unknown>;
  /** The honest server's output when the round completed. */
  result?: SecAggResult;
  /** Why the honest server round aborted (a CohortError). */
  error?: unknown;
  server: SecAggServerRound;
}

/** Runs the round to completion or abort; protocol failures land in the report. */
export async function runSocketSecAggRound(
  options: SocketRoundOptions,
): Promise<SocketRoundReport> {
  const { coordinator, roundId } = options;
  const server = new SecAggServerRound({
    coordinatorId: coordinator.coordinatorId,
    experiment: coordinator.experiment,
    roundId,
    modelHash: options.modelHash,
    config: options.config,
    cohort: options.cohort.map((id) => {
      const client = coordinator.clients.get(id);
      if (!client) throw new Error(`client ${id} is not connected`);
      return { clientId: id, identityPublicKey: client.identityPublicKey };
    }),
  });
  const report: SocketRoundReport = {
    acks: new Map(SECAGG_PHASES.map((p) => [p, new Map<string, unknown[]>()] as const)),
    refusals: new Map(),
    serverRejections: new Map(),
    server,
  };

  const exchange = async (phase: SecAggPhase, requests: Map<string, unknown>): Promise<void> => {
    const anyRequest = requests.values().next().value;
    const refusedBefore = [...report.refusals.keys()].filter((id) => !requests.has(id));
    const targets = new Map(requests);
    if (anyRequest !== undefined) for (const id of refusedBefore) targets.set(id, anyRequest);
    await Promise.all(
      [...targets].map(async ([id, honest]) => {
        const planned = options.requests?.(phase, id, structuredClone(honest)) ?? [honest];
        let delivered = false;
        for (const request of planned) {
          const ack = await coordinator.secagg(id, phase, roundId, request);
          const list = report.acks.get(phase)!;
          list.set(id, [...(list.get(id) ?? []), ack]);
          if (isErrorAck(ack)) {
            if (!report.refusals.has(id)) report.refusals.set(id, { phase, code: ack.code });
            continue;
          }
          if (delivered || !requests.has(id) || report.refusals.has(id)) continue;
          delivered = true;
          try {
            await server.receive(phase, id, ack);
          } catch (error) {
            report.serverRejections.set(id, error);
          }
        }
      }),
    );
  };

  try {
    const advertise = server.advertiseKeysRequest();
    await exchange('advertiseKeys', new Map(options.cohort.map((id) => [id, advertise] as const)));
    await exchange('shareKeys', server.closeAdvertiseKeys());
    await exchange('maskedInput', server.closeShareKeys());
    await exchange('consistencyCheck', server.closeMaskedInput());
    await exchange('unmasking', server.closeConsistencyCheck());
    report.result = await server.finish();
  } catch (error) {
    if (!isCohortError(error)) throw error;
    report.error = error;
  }
  return report;
}

/** Every acknowledgement `clientId` sent from `phase` on. */
export function acksFrom(
  report: SocketRoundReport,
  clientId: string,
  phase: SecAggPhase,
): unknown[] {
  return SECAGG_PHASES.slice(SECAGG_PHASES.indexOf(phase)).flatMap(
    (p) => report.acks.get(p)!.get(clientId) ?? [],
  );
}
