import { CohortError } from '../errors';
import { clientIdFromPublicKey } from '../identity';
import { verifySignature } from './crypto-primitives';
import { bytesToUint32LE } from './encoding';
import type { NeighbourGraph } from './graph';
import { buildNeighbourGraph, graphSeed } from './graph';
import type {
  AdvertiseKeysRequest,
  AdvertisedKeys,
  ConsistencyCheckRequest,
  IncomingBundle,
  MaskedInputRequest,
  OutgoingBundle,
  ShareKeysRequest,
  SurvivorSignature,
  UnmaskingRequest,
} from './messages';
import { parseSecAggMessage } from './messages';
import type { SecAggConfig } from './params';
import { assertSafeConfig, configHash } from './params';
import type { RoundContext } from './signed-payloads';
import { advertisementBytes, consistencyBytes } from './signed-payloads';
import type { SecAggResult } from './unmask';
import { reconstructAggregate } from './unmask';

/** A cohort member as the coordinator knows it from authentication. */
export interface SecAggCohortMember {
  clientId: string;
  identityPublicKey: Uint8Array;
}

/** Options of a {@link SecAggServerRound}. */
export interface SecAggServerOptions {
  roundId: string;
  modelHash: string;
  config: SecAggConfig;
  cohort: readonly SecAggCohortMember[];
}

/** The phase whose responses the round collects now, or its end state. */
export type SecAggServerPhase =
  | 'advertiseKeys'
  | 'shareKeys'
  | 'maskedInput'
  | 'consistencyCheck'
  | 'unmasking'
  | 'done'
  | 'aborted';

const ORDER: SecAggServerPhase[] = [
  'advertiseKeys',
  'shareKeys',
  'maskedInput',
  'consistencyCheck',
  'unmasking',
  'done',
];

/** How many clients remain at each phase, for logs and the dashboard. */
export interface SecAggRoundStats {
  phase: SecAggServerPhase;
  cohort: number;
  advertised: number;
  sharedKeys: number;
  maskedInputs: number;
  signedSurvivors: number;
  unmasked: number;
}

/**
 * The coordinator's side of one secure-aggregation round, transport-free. The transport sends
 * each phase's requests, feeds every response to `receive*` (which validates it and throws a
 * CohortError for junk, duplicates, late or out-of-order messages, without changing state),
 * and calls `close*` at the phase deadline or once `awaiting()` is empty; `close*` fixes the
 * survivors, aborts with SECAGG_BELOW_THRESHOLD when fewer than t remain, and returns the next
 * request for each survivor. Masked inputs are summed mod 2^32 as they arrive into one
 * accumulator, so memory stays one model's size whatever the cohort. The coordinator only
 * routes sealed bundles; it learns the weighted mean of the survivors and nothing else.
 */
export class SecAggServerRound {
  private state: SecAggServerPhase = 'advertiseKeys';
  private readonly ctx: RoundContext;
  private readonly cohort = new Map<string, Uint8Array>();
  private expected: Set<string>;
  private readonly responded = new Set<string>();
  private readonly inFlight = new Set<string>();
  private readonly keys = new Map<string, AdvertisedKeys>();
  private graph: NeighbourGraph | undefined;
  private bundles = new Map<string, Map<string, OutgoingBundle>>();
  private accumulator: Uint32Array | undefined;
  private sharers: string[] = [];
  private survivors: string[] = [];
  private readonly signatures = new Map<string, Uint8Array>();
  private signers: string[] = [];
  private readonly selfMaskShares = new Map<string, Uint8Array[]>();
  private readonly secretKeyShares = new Map<string, Uint8Array[]>();
  private finishing = false;

  constructor(private readonly options: SecAggServerOptions) {
    assertSafeConfig(options.config, options.cohort.length);
    for (const m of options.cohort) {
      if (
        clientIdFromPublicKey(m.identityPublicKey) !== m.clientId ||
        this.cohort.has(m.clientId)
      ) {
        throw new CohortError(
          'CONFIG_INVALID',
          `cohort member ${m.clientId} is repeated or has a foreign key`,
        );
      }
      this.cohort.set(m.clientId, m.identityPublicKey);
    }
    this.ctx = {
      roundId: options.roundId,
      modelHash: options.modelHash,
      configHash: configHash(options.config),
    };
    this.expected = new Set(this.cohort.keys());
  }

  /** Current phase. */
  get phase(): SecAggServerPhase {
    return this.state;
  }

  /** The config hash every client signs. */
  get configHash(): string {
    return this.ctx.configHash;
  }

  /** Clients that still owe a response in the current phase. */
  awaiting(): string[] {
    return [...this.expected].filter((id) => !this.responded.has(id)).sort();
  }

  /** Survivor counts per phase. */
  stats(): SecAggRoundStats {
    return {
      phase: this.state,
      cohort: this.cohort.size,
      advertised: this.keys.size,
      sharedKeys: this.sharers.length,
      maskedInputs: this.survivors.length,
      signedSurvivors: this.signers.length,
      unmasked: this.state === 'unmasking' || this.state === 'done' ? this.responded.size : 0,
    };
  }

  /** Phase 0 request, the same for every cohort member. */
  advertiseKeysRequest(): AdvertiseKeysRequest {
    return {
      roundId: this.ctx.roundId,
      modelHash: this.ctx.modelHash,
      config: this.options.config,
    };
  }

  /** Records a client's signed keys after verifying the signature against its identity. */
  receiveAdvertiseKeys(clientId: string, payload: unknown): Promise<void> {
    return this.accept('advertiseKeys', clientId, async () => {
      const res = parseSecAggMessage('advertiseKeysResponse', payload);
      this.checkRound(res.roundId);
      const identityPublicKey = this.cohort.get(clientId)!;
      const message = advertisementBytes(this.ctx, clientId, res.cPublicKey, res.sPublicKey);
      if (!(await verifySignature(message, res.signature, identityPublicKey))) {
        throw new CohortError(
          'SECAGG_SIGNATURE',
          `advertised keys of ${clientId} are not signed by it`,
        );
      }
      return () => {
        this.keys.set(clientId, {
          clientId,
          identityPublicKey,
          cPublicKey: res.cPublicKey,
          sPublicKey: res.sPublicKey,
          signature: res.signature,
        });
      };
    });
  }

  /** Ends phase 0: fixes the participants and their graph; one ShareKeys request each. */
  closeAdvertiseKeys(): Map<string, ShareKeysRequest> {
    const participants = this.closePhase('advertiseKeys');
    const graph = buildNeighbourGraph(
      participants,
      this.options.config.neighbours,
      graphSeed(this.ctx.roundId, this.ctx.configHash, participants),
    );
    this.graph = graph;
    return this.openPhase('shareKeys', participants, (id) => ({
      roundId: this.ctx.roundId,
      participants,
      neighbours: graph.neighboursOf(id).map((n) => this.keys.get(n)!),
    }));
  }

  /** Records a client's sealed bundles; they must address exactly its neighbours. */
  receiveShareKeys(clientId: string, payload: unknown): Promise<void> {
    return this.accept('shareKeys', clientId, () => {
      const res = parseSecAggMessage('shareKeysResponse', payload);
      this.checkRound(res.roundId);
      const neighbours = this.graph!.neighboursOf(clientId);
      const byRecipient = new Map(res.bundles.map((b) => [b.recipientId, b] as const));
      if (byRecipient.size !== res.bundles.length || byRecipient.size !== neighbours.length) {
        throw new CohortError(
          'MESSAGE_INVALID',
          `bundles of ${clientId} do not address its neighbours`,
        );
      }
      for (const n of neighbours) {
        if (!byRecipient.has(n))
          throw new CohortError('MESSAGE_INVALID', `no bundle from ${clientId} to ${n}`);
      }
      return () => this.bundles.set(clientId, byRecipient);
    });
  }

  /** Ends phase 1: routes each sharer's bundles to their recipients; starts the accumulator. */
  closeShareKeys(): Map<string, MaskedInputRequest> {
    const sharers = this.closePhase('shareKeys');
    this.sharers = sharers;
    const inSharers = new Set(sharers);
    const graph = this.graph!;
    const requests = this.openPhase('maskedInput', sharers, (id) => {
      const incoming: IncomingBundle[] = [];
      for (const sender of graph.neighboursOf(id)) {
        if (!inSharers.has(sender)) continue;
        const b = this.bundles.get(sender)!.get(id)!;
        incoming.push({ senderId: sender, nonce: b.nonce, ciphertext: b.ciphertext });
      }
      return { roundId: this.ctx.roundId, participants: sharers, bundles: incoming };
    });
    this.bundles = new Map();
    this.accumulator = new Uint32Array(this.options.config.vectorLength + 1);
    return requests;
  }

  /** Adds a masked input into the running sum mod 2^32; nothing per client is kept. */
  receiveMaskedInput(clientId: string, payload: unknown): Promise<void> {
    return this.accept('maskedInput', clientId, () => {
      const res = parseSecAggMessage('maskedInputResponse', payload);
      this.checkRound(res.roundId);
      const acc = this.accumulator!;
      if (res.maskedInput.length !== acc.length * 4) {
        throw new CohortError(
          'UPDATE_SHAPE',
          `masked input of ${clientId} has ${res.maskedInput.length} bytes`,
        );
      }
      const input = bytesToUint32LE(res.maskedInput);
      return () => {
        for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + input[i]!;
      };
    });
  }

  /** Ends phase 2: the survivors are those whose input was summed; each is asked to sign them. */
  closeMaskedInput(): Map<string, ConsistencyCheckRequest> {
    const survivors = this.closePhase('maskedInput');
    this.survivors = survivors;
    const request: ConsistencyCheckRequest = { roundId: this.ctx.roundId, survivors };
    return this.openPhase('consistencyCheck', survivors, () => request);
  }

  /** Records a survivor's signature over the survivor list after verifying it. */
  receiveConsistencyCheck(clientId: string, payload: unknown): Promise<void> {
    return this.accept('consistencyCheck', clientId, async () => {
      const res = parseSecAggMessage('consistencyCheckResponse', payload);
      this.checkRound(res.roundId);
      const message = consistencyBytes(this.ctx, this.survivors);
      if (!(await verifySignature(message, res.signature, this.cohort.get(clientId)!))) {
        throw new CohortError(
          'SECAGG_SIGNATURE',
          `consistency signature of ${clientId} does not verify`,
        );
      }
      return () => this.signatures.set(clientId, res.signature);
    });
  }

  /**
   * Ends phase 3: checks that every secret that must be rebuilt still has t confirmed holders
   * (else aborts now rather than after clients refuse), and sends everyone the signed list.
   */
  closeConsistencyCheck(): Map<string, UnmaskingRequest> {
    const signers = this.closePhase('consistencyCheck');
    this.signers = signers;
    const graph = this.graph!;
    const signed = new Set(signers);
    const alive = new Set(this.survivors);
    const dropped = this.sharers.filter((id) => !alive.has(id));
    for (const owner of this.sharers) {
      const needed = alive.has(owner) || graph.neighboursOf(owner).some((n) => alive.has(n));
      const confirmed = graph.holdersOf(owner).filter((h) => signed.has(h)).length;
      if (needed && confirmed < this.options.config.threshold) {
        this.abort();
        throw new CohortError(
          'SECAGG_BELOW_THRESHOLD',
          `only ${confirmed} share holders of ${owner} remain, ${this.options.config.threshold} needed`,
        );
      }
    }
    const signatures: SurvivorSignature[] = signers.map((id) => ({
      clientId: id,
      identityPublicKey: this.cohort.get(id)!,
      signature: this.signatures.get(id)!,
    }));
    const request: UnmaskingRequest = {
      roundId: this.ctx.roundId,
      survivors: this.survivors,
      dropped,
      signatures,
    };
    return this.openPhase('unmasking', signers, () => request);
  }

  /**
   * Records revealed shares: self-mask shares only of survivors, secret-key shares only of
   * dropped clients, only of owners the sender holds shares of, each owner once.
   */
  receiveUnmasking(clientId: string, payload: unknown): Promise<void> {
    return this.accept('unmasking', clientId, () => {
      const res = parseSecAggMessage('unmaskingResponse', payload);
      this.checkRound(res.roundId);
      const graph = this.graph!;
      const alive = new Set(this.survivors);
      const sharers = new Set(this.sharers);
      const seen = new Set<string>();
      const check = (owner: string, wantAlive: boolean): void => {
        const ok =
          !seen.has(owner) &&
          sharers.has(owner) &&
          alive.has(owner) === wantAlive &&
          (owner === clientId || graph.areNeighbours(owner, clientId));
        if (!ok)
          throw new CohortError(
            'MESSAGE_INVALID',
            `${clientId} revealed an unexpected share of ${owner}`,
          );
        seen.add(owner);
      };
      for (const s of res.selfMaskShares) check(s.ownerId, true);
      for (const s of res.secretKeyShares) check(s.ownerId, false);
      const t = this.options.config.threshold;
      const store = (map: Map<string, Uint8Array[]>, owner: string, share: Uint8Array): void => {
        const list = map.get(owner) ?? [];
        if (list.length < t) list.push(share);
        map.set(owner, list);
      };
      return () => {
        for (const s of res.selfMaskShares) store(this.selfMaskShares, s.ownerId, s.share);
        for (const s of res.secretKeyShares) store(this.secretKeyShares, s.ownerId, s.share);
      };
    });
  }

  /**
   * Ends the round: rebuilds each survivor's self-mask seed and each dropped neighbour's
   * masking key, removes all masks and decodes the weighted mean. Any shortfall or bad
   * reconstruction aborts the round and outputs nothing.
   */
  async finish(): Promise<SecAggResult> {
    if (this.state === 'aborted') throw new CohortError('ROUND_ABORTED', 'the round was aborted');
    if (this.finishing) throw new CohortError('SECAGG_REPLAY', 'finish() already called');
    this.finishing = true;
    this.closePhase('unmasking'); // at least t clients must have answered
    try {
      const alive = new Set(this.survivors);
      const result = await reconstructAggregate({
        roundId: this.ctx.roundId,
        config: this.options.config,
        graph: this.graph!,
        accumulator: this.accumulator!,
        survivors: this.survivors,
        dropped: this.sharers.filter((id) => !alive.has(id)),
        keys: this.keys,
        selfMaskShares: this.selfMaskShares,
        secretKeyShares: this.secretKeyShares,
      });
      this.state = 'done';
      this.release();
      return result;
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** Abandons the round (deadline policy, shutdown): wipes the partial sum; nothing is output. */
  abort(): void {
    if (this.state === 'done') return;
    this.state = 'aborted';
    this.release();
  }

  private release(): void {
    this.accumulator?.fill(0);
    this.accumulator = undefined;
    this.bundles = new Map();
    this.selfMaskShares.clear();
    this.secretKeyShares.clear();
    this.expected = new Set();
  }

  /**
   * Runs one response through admission, validation (possibly async: signature checks) and,
   * only if the phase is still open afterwards, the state change `validate` returns. A client
   * is marked in flight meanwhile, so a concurrent duplicate is refused.
   */
  private async accept(
    phase: SecAggServerPhase,
    clientId: string,
    validate: () => (() => void) | Promise<() => void>,
  ): Promise<void> {
    this.admit(phase, clientId);
    this.inFlight.add(clientId);
    try {
      const commit = await validate();
      if (this.state !== phase || this.finishing) {
        throw new CohortError(
          'SECAGG_LATE',
          `${phase} from ${clientId} finished after the phase closed`,
        );
      }
      commit();
      this.responded.add(clientId);
    } finally {
      this.inFlight.delete(clientId);
    }
  }

  private admit(phase: SecAggServerPhase, clientId: string): void {
    if (this.state === 'aborted') throw new CohortError('ROUND_ABORTED', 'the round was aborted');
    if (!this.cohort.has(clientId)) {
      throw new CohortError('UPDATE_NOT_SELECTED', `${clientId} is not in this round's cohort`);
    }
    const now = ORDER.indexOf(this.state);
    const wanted = ORDER.indexOf(phase);
    if (wanted < now || this.finishing) {
      throw new CohortError('SECAGG_LATE', `${phase} from ${clientId} after the phase closed`);
    }
    if (wanted > now)
      throw new CohortError('SECAGG_REPLAY', `${phase} from ${clientId} before it opened`);
    if (!this.expected.has(clientId)) {
      throw new CohortError('SECAGG_LATE', `${clientId} was already declared dropped`);
    }
    if (this.responded.has(clientId) || this.inFlight.has(clientId)) {
      throw new CohortError('UPDATE_DUPLICATE', `second ${phase} response from ${clientId}`);
    }
  }

  private checkRound(roundId: string): void {
    if (roundId !== this.ctx.roundId) {
      throw new CohortError(
        'UPDATE_STALE',
        `response for round ${roundId}, this is ${this.ctx.roundId}`,
      );
    }
  }

  /** Survivors of `phase` (sorted), or abort when fewer than t. */
  private closePhase(phase: SecAggServerPhase): string[] {
    if (this.state !== phase) {
      if (this.state === 'aborted') throw new CohortError('ROUND_ABORTED', 'the round was aborted');
      throw new CohortError('SECAGG_REPLAY', `cannot close ${phase} while at ${this.state}`);
    }
    const survivors = [...this.responded].sort();
    if (survivors.length < this.options.config.threshold) {
      this.abort();
      throw new CohortError(
        'SECAGG_BELOW_THRESHOLD',
        `${survivors.length} clients completed ${phase}, threshold is ${this.options.config.threshold}`,
      );
    }
    return survivors;
  }

  private openPhase<R>(
    phase: SecAggServerPhase,
    ids: string[],
    build: (id: string) => R,
  ): Map<string, R> {
    this.state = phase;
    this.expected = new Set(ids);
    this.responded.clear();
    return new Map(ids.map((id) => [id, build(id)] as const));
  }
}
