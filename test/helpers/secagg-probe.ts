import { connectNodeClient } from '../../client-node/node-client';
import type { NodeClient, NodeClientOptions } from '../../client-node/node-client';
import type { SecureRoundContext, SecureSubmission } from '../../shared/client/client-session';
import type { SecAggSubmissionOptions } from '../../shared/client/secure-submission';
import { SecAggSubmission } from '../../shared/client/secure-submission';
import type { LocalFitResult } from '../../shared/client/trainer';
import type { Dataset } from '../../shared/data/dataset';
import { CohortError } from '../../shared/errors';
import type { IdentityKeyPair } from '../../shared/identity';
import { clientIdFromPublicKey, generateIdentity } from '../../shared/identity';
import type { FitIns } from '../../shared/protocol/messages';
import type { SecAggPhase } from '../../shared/secagg';
import { slice } from './federation';

/**
 * A SecureSubmission for socket-level secure-aggregation tests: it wraps the real
 * SecAggSubmission (so the honest client code decides every answer) and adds what a test
 * needs around it: a copy of each update it is asked to mask (to compute the expected mean),
 * fault injection at a chosen phase (vanish for good, or answer only after a signal), and a
 * constant-update switch for uniformity checks.
 */

/** The five secure-aggregation phases, as the coordinator names them on the wire. */
export type SecAggPhaseName = SecAggPhase;

/** One update as the client trained it, copied before the submission wipes it. */
export interface CapturedUpdate {
  round: number;
  roundId: string;
  /** Coordinator and experiment the client bound the round to (from its registration). */
  coordinatorId: string;
  experiment: string;
  modelHash: string;
  delta: Float32Array;
  numExamples: number;
  /** The local train loss, which travels inside the masked vector. */
  trainLoss: number;
}

/** The client's secure-aggregation policy, as {@link SecAggSubmission} takes it. */
export type ProbePolicy = Omit<SecAggSubmissionOptions, 'identity'>;

/** Faults a probe injects; `round` unset means every round. */
export interface ProbeFaults {
  /** When asked for this phase, close the client for good (no reconnection) and refuse. */
  vanishAt?: { phase: SecAggPhaseName; round?: number };
  /** Compute this phase's answer honestly but hand it over only once `release` settles. */
  holdAnswer?: { phase: SecAggPhaseName; round?: number; release: () => Promise<unknown> };
  /** Mask this constant vector instead of the trained update (uniformity checks). */
  constantUpdate?: number;
}

/** See the module comment. */
export class SecAggProbe implements SecureSubmission {
  /** Every update this client was asked to mask, oldest first. */
  readonly updates: CapturedUpdate[] = [];
  /** Every phase request this client received, oldest first. */
  readonly asked: Array<{ round: number; phase: string }> = [];
  /** The wire width (config.modulusBits) of each AdvertiseKeys request, oldest first. */
  readonly modulusBits: number[] = [];
  /** The byte length of each masked input this client sent, oldest first. */
  readonly maskedInputBytes: number[] = [];
  private readonly inner: SecAggSubmission;
  private readonly roundNumbers = new Map<string, number>();
  private readonly waiters: Array<{ phase: string; resolve: () => void }> = [];
  private client: NodeClient | undefined;
  private gone = false;

  constructor(
    identity: IdentityKeyPair,
    public faults: ProbeFaults = {},
    policy: ProbePolicy = {},
  ) {
    this.inner = new SecAggSubmission({ identity, ...policy });
  }

  /** The client this probe belongs to; bound after connecting, since the client needs the probe first. */
  bind(client: NodeClient): void {
    this.client = client;
  }

  /** True once the probe closed its client on purpose. */
  get vanished(): boolean {
    return this.gone;
  }

  /** The update of round `round` (throws if this client did not train that round). */
  updateOf(round: number): CapturedUpdate {
    const update = this.updates.find((u) => u.round === round);
    if (!update) throw new Error(`no update captured for round ${round}`);
    return update;
  }

  /** Resolves the first time this client is asked for `phase` (now, if it already was). */
  whenAsked(phase: SecAggPhaseName): Promise<void> {
    if (this.asked.some((a) => a.phase === phase)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ phase, resolve }));
  }

  prepare(context: SecureRoundContext, fit: FitIns, result: LocalFitResult): void {
    const { roundId } = context;
    this.roundNumbers.set(roundId, fit.round);
    const delta =
      this.faults.constantUpdate === undefined
        ? result.delta.slice()
        : new Float32Array(result.delta.length).fill(this.faults.constantUpdate);
    this.updates.push({
      round: fit.round,
      roundId,
      coordinatorId: context.coordinatorId,
      experiment: context.experiment,
      modelHash: fit.model.modelHash,
      delta: delta.slice(),
      numExamples: result.numExamples,
      trainLoss: result.trainLoss,
    });
    this.inner.prepare(context, fit, { ...result, delta });
  }

  async handle(phase: string, roundId: string, body: unknown): Promise<unknown> {
    const round = this.roundNumbers.get(roundId) ?? 0;
    this.asked.push({ round, phase });
    for (const w of this.waiters.filter((x) => x.phase === phase)) w.resolve();
    const vanish = this.faults.vanishAt;
    if (vanish && vanish.phase === phase && (vanish.round ?? round) === round) {
      this.gone = true;
      this.client?.close();
      throw new CohortError('CLIENT_DROPPED', `fault injection: vanished at ${phase}`);
    }
    if (phase === 'advertiseKeys') {
      this.modulusBits.push((body as { config: { modulusBits: number } }).config.modulusBits);
    }
    const answer = await this.inner.handle(phase, roundId, body);
    if (phase === 'maskedInput') {
      this.maskedInputBytes.push((answer as { maskedInput: Uint8Array }).maskedInput.byteLength);
    }
    const hold = this.faults.holdAnswer;
    if (hold && hold.phase === phase && (hold.round ?? round) === round) await hold.release();
    return answer;
  }

  forget(roundId: string): void {
    this.inner.forget(roundId);
  }
}

/** A real Node client with its probe, identity and private data (enough to restart it). */
export interface ProbedClient {
  id: string;
  identity: IdentityKeyPair;
  train: Dataset;
  probe: SecAggProbe;
  client: NodeClient;
}

/** What {@link connectProbedClient} needs to (re)start one client. */
export interface ProbedClientSpec {
  url: string;
  backend: string;
  train: Dataset;
  test: Dataset;
  identity?: IdentityKeyPair;
  faults?: ProbeFaults;
  /** Pinned identities, minimum cohort and round ledger of the client's secure submission. */
  policy?: ProbePolicy;
  extra?: Partial<NodeClientOptions>;
}

/** Connects one real Node client whose secure submission is a probe. */
export async function connectProbedClient(spec: ProbedClientSpec): Promise<ProbedClient> {
  const identity = spec.identity ?? generateIdentity();
  const probe = new SecAggProbe(identity, spec.faults ?? {}, spec.policy ?? {});
  const client = await connectNodeClient({
    server: spec.url,
    task: 'mnist',
    train: spec.train,
    test: spec.test,
    identity,
    backend: spec.backend,
    reconnectDelayMs: 100,
    reconnectDelayMaxMs: 500,
    secure: probe,
    ...spec.extra,
  });
  probe.bind(client);
  return {
    id: clientIdFromPublicKey(identity.publicKey),
    identity,
    train: spec.train,
    probe,
    client,
  };
}

/**
 * Starts one probed client per entry of `sizes`, client i training on its own disjoint block
 * of `sizes[i]` examples (different sizes, so an example-weighted mean differs from a plain one).
 */
export async function startProbedClients(
  url: string,
  backend: string,
  data: { train: Dataset; test: Dataset },
  sizes: readonly number[],
  options: (i: number) => Partial<ProbedClientSpec> = () => ({}),
): Promise<ProbedClient[]> {
  const clients: ProbedClient[] = [];
  let offset = 0;
  for (const [i, size] of sizes.entries()) {
    clients.push(
      await connectProbedClient({
        url,
        backend,
        train: slice(data.train, offset, offset + size),
        test: slice(data.test, 0, Math.min(50, data.test.count)),
        ...options(i),
      }),
    );
    offset += size;
  }
  return clients;
}

/** Closes every client a probe did not already close (a NodeClient cannot be closed twice). */
export function closeProbedClients(clients: readonly ProbedClient[]): void {
  for (const c of clients) if (!c.probe.vanished) c.client.close();
}
