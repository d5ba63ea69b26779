import { CohortError } from '../errors';
import { allocateWrapVector } from '../simd/kernels';
import type { SecAggPhase } from './client';
import { clientIdFromPublicKey } from '../identity';
import { verifySignature } from './crypto-primitives';
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
import { addPackedInto, packedElementBytes } from './packing';
import type { SecAggConfig } from './params';
import { MASKED_EXTRA_ELEMENTS, MIN_THRESHOLD, assertSafeConfig, configHash } from './params';
import type { RoundView } from './round-view';
import { buildRoundView } from './round-view';
import type { RoundContext } from './signed-payloads';
import { advertisementBytes, consistencyBytes, maskedInputBytes } from './signed-payloads';
import type { SecAggServerPhase } from './phase-gate';
import { PhaseGate } from './phase-gate';
import type { MaskRemover, SecAggResult } from './unmask';
import { assertReconstructible, reconstructAggregate } from './unmask';

export type { SecAggServerPhase } from './phase-gate';

/** A cohort member as the coordinator knows it from authentication. */
export interface SecAggCohortMember {
  clientId: string;
  identityPublicKey: Uint8Array;
  /** Its registrar certificate, when it presented one (relayed in the advertisement list). */
  certificate?: Uint8Array;
}

/** Options of a {@link SecAggServerRound}. */
export interface SecAggServerOptions {
  /** This coordinator's id, as sent in its registration challenge. */
  coordinatorId: string;
  /** Experiment name, as announced at registration. */
  experiment: string;
  roundId: string;
  modelHash: string;
  config: SecAggConfig;
  cohort: readonly SecAggCohortMember[];
  /** Where Unmasking expands and removes the masks (e.g. a worker pool); default: inline. */
  removeMasks?: MaskRemover;
}

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
 * routes sealed bundles; it learns the weighted mean of the survivors and nothing else. It
 * derives the graph and threshold from the advertisement list exactly as every client does.
 */
export class SecAggServerRound {
  private readonly gate: PhaseGate;
  private readonly ctx: RoundContext;
  private readonly cohort = new Map<string, Uint8Array>();
  private readonly certificates = new Map<string, Uint8Array>();
  private readonly keys = new Map<string, AdvertisedKeys>();
  private view: RoundView | undefined;
  private bundles = new Map<string, Map<string, OutgoingBundle>>();
  private accumulator: Uint32Array | undefined;
  private sharers: string[] = [];
  private survivors: string[] = [];
  private readonly inputSignatures = new Map<string, Uint8Array>();
  /** Cluster mode: masked inputs a gateway folded and reported, until its partial sum comes. */
  private readonly awaitingPartial = new Map<string, Set<string>>();
  private readonly signatures = new Map<string, Uint8Array>();
  private signers: string[] = [];
  private readonly selfMaskShares = new Map<string, Uint8Array[]>();
  private readonly secretKeyShares = new Map<string, Uint8Array[]>();

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
      if (m.certificate !== undefined) this.certificates.set(m.clientId, m.certificate);
    }
    this.ctx = {
      coordinatorId: options.coordinatorId,
      experiment: options.experiment,
      roundId: options.roundId,
      modelHash: options.modelHash,
      configHash: configHash(options.config),
    };
    this.gate = new PhaseGate(new Set(this.cohort.keys()), MIN_THRESHOLD);
  }

  /** Current phase. */
  get phase(): SecAggServerPhase {
    return this.gate.phase;
  }

  /** The config hash every client signs. */
  get configHash(): string {
    return this.ctx.configHash;
  }

  /** The round view once AdvertiseKeys closed (participants, k, t, graph). */
  get roundView(): RoundView | undefined {
    return this.view;
  }

  /** Clients that still owe a response in the current phase. */
  awaiting(): string[] {
    return this.gate.awaiting();
  }

  /** Survivor counts per phase. */
  stats(): SecAggRoundStats {
    return {
      phase: this.gate.phase,
      cohort: this.cohort.size,
      advertised: this.keys.size,
      sharedKeys: this.sharers.length,
      maskedInputs: this.survivors.length,
      signedSurvivors: this.signers.length,
      unmasked: ['unmasking', 'done'].includes(this.gate.phase) ? this.gate.answered : 0,
    };
  }

  /** Phase 0 request, the same for every cohort member. */
  advertiseKeysRequest(): AdvertiseKeysRequest {
    return {
      coordinatorId: this.ctx.coordinatorId,
      experiment: this.ctx.experiment,
      roundId: this.ctx.roundId,
      modelHash: this.ctx.modelHash,
      config: this.options.config,
    };
  }

  /** Records a client's signed keys after verifying the signature against its identity. */
  receiveAdvertiseKeys(clientId: string, payload: unknown): Promise<void> {
    return this.gate.accept('advertiseKeys', clientId, async () => {
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
      const certificate = this.certificates.get(clientId);
      return () => {
        this.keys.set(clientId, {
          clientId,
          identityPublicKey,
          cPublicKey: res.cPublicKey,
          sPublicKey: res.sPublicKey,
          signature: res.signature,
          ...(certificate !== undefined ? { certificate } : {}),
        });
      };
    });
  }

  /**
   * Ends phase 0: fixes the participants, the round view and its graph; every participant
   * gets the same ShareKeys request, the whole signed advertisement list.
   */
  closeAdvertiseKeys(): Map<string, ShareKeysRequest> {
    const participants = this.closeGate('advertiseKeys');
    const advertisements = participants.map((id) => this.keys.get(id)!);
    try {
      this.view = buildRoundView(this.ctx, advertisements);
    } catch (err) {
      this.abort();
      throw err;
    }
    this.gate.setThreshold(this.view.params.threshold);
    const request: ShareKeysRequest = { roundId: this.ctx.roundId, advertisements };
    return this.openPhase('shareKeys', participants, () => request);
  }

  /** Records a client's sealed bundles; they must address exactly its neighbours. */
  receiveShareKeys(clientId: string, payload: unknown): Promise<void> {
    return this.gate.accept('shareKeys', clientId, () => {
      const res = parseSecAggMessage('shareKeysResponse', payload);
      this.checkRound(res.roundId);
      const neighbours = this.view!.graph.neighboursOf(clientId);
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
    const sharers = this.closeGate('shareKeys');
    this.sharers = sharers;
    const inSharers = new Set(sharers);
    const graph = this.view!.graph;
    const requests = this.openPhase('maskedInput', sharers, (id) => {
      const incoming: IncomingBundle[] = [];
      for (const sender of graph.neighboursOf(id)) {
        if (!inSharers.has(sender)) continue;
        const b = this.bundles.get(sender)!.get(id)!;
        incoming.push({ senderId: sender, nonce: b.nonce, ciphertext: b.ciphertext });
      }
      return { roundId: this.ctx.roundId, sharers, bundles: incoming };
    });
    this.bundles = new Map();
    // In SIMD kernel memory, so the fold of every masked input and the unmasking are vectorized.
    this.accumulator = allocateWrapVector(this.options.config.vectorLength + MASKED_EXTRA_ELEMENTS);
    return requests;
  }

  /**
   * Checks a masked input's length (vectorLength + 2 elements of modulusBits / 8 bytes) and
   * its signature over the sharer list (the one every sharer was sent), then adds it into the
   * running sum mod 2^32; nothing per client is kept but the signature.
   */
  receiveMaskedInput(clientId: string, payload: unknown): Promise<void> {
    return this.gate.accept('maskedInput', clientId, async () => {
      const res = parseSecAggMessage('maskedInputResponse', payload);
      this.checkRound(res.roundId);
      const acc = this.accumulator!;
      const bits = this.options.config.modulusBits;
      if (res.maskedInput.length !== acc.length * packedElementBytes(bits)) {
        throw new CohortError(
          'UPDATE_SHAPE',
          `masked input of ${clientId} has ${res.maskedInput.length} bytes, not ${acc.length} elements of ${bits} bits`,
        );
      }
      await this.verifyInputSignature(clientId, res.signature);
      return () => {
        addPackedInto(acc, res.maskedInput, bits);
        this.inputSignatures.set(clientId, res.signature);
      };
    });
  }

  /**
   * Cluster mode: a masked input that the gateway process holding `clientId`'s socket checked
   * and folded into its own partial sum. Only the signature comes here (verified as in
   * {@link receiveMaskedInput}); the client counts as a survivor only once `gateway`'s
   * partial sum has been folded by {@link foldPartialSum}.
   */
  receiveFoldedMaskedInput(clientId: string, gateway: string, payload: unknown): Promise<void> {
    return this.gate.accept('maskedInput', clientId, async () => {
      const res = parseSecAggMessage('foldedMaskedInput', payload);
      this.checkRound(res.roundId);
      await this.verifyInputSignature(clientId, res.signature);
      return () => {
        const held = this.awaitingPartial.get(gateway) ?? new Set<string>();
        held.add(clientId);
        this.awaitingPartial.set(gateway, held);
        this.inputSignatures.set(clientId, res.signature);
      };
    });
  }

  /**
   * Cluster mode: adds a gateway's partial sum, which must hold exactly the masked inputs it
   * reported (any other set, and the sum would not match the survivor list the clients sign:
   * refused with MESSAGE_INVALID, and those clients end the phase as dropped).
   */
  foldPartialSum(gateway: string, payload: unknown): void {
    if (this.gate.phase !== 'maskedInput') {
      throw new CohortError('SECAGG_LATE', `partial sum of ${gateway} after MaskedInput closed`);
    }
    const res = parseSecAggMessage('partialMaskedSum', payload);
    this.checkRound(res.roundId);
    const expected = this.awaitingPartial.get(gateway) ?? new Set<string>();
    const covered = new Set(res.contributors);
    if (
      covered.size !== res.contributors.length ||
      covered.size !== expected.size ||
      res.contributors.some((id) => !expected.has(id))
    ) {
      throw new CohortError(
        'MESSAGE_INVALID',
        `partial sum of ${gateway} covers ${covered.size} clients, not the ${expected.size} it reported`,
      );
    }
    if (expected.size === 0) return;
    const acc = this.accumulator!;
    const bits = this.options.config.modulusBits;
    if (res.sum.length !== acc.length * packedElementBytes(bits)) {
      throw new CohortError(
        'UPDATE_SHAPE',
        `partial sum of ${gateway} has ${res.sum.length} bytes, not ${acc.length} elements of ${bits} bits`,
      );
    }
    addPackedInto(acc, res.sum, bits);
    this.awaitingPartial.delete(gateway);
  }

  /** Ends phase 2: the survivors are those whose input was summed; each is asked to sign them. */
  closeMaskedInput(): Map<string, ConsistencyCheckRequest> {
    // Reported but never delivered in a partial sum: not in the accumulator, so not survivors.
    for (const held of this.awaitingPartial.values()) {
      if (this.gate.phase === 'maskedInput') this.gate.retract('maskedInput', held);
      for (const id of held) this.inputSignatures.delete(id);
    }
    this.awaitingPartial.clear();
    const survivors = this.closeGate('maskedInput');
    this.survivors = survivors;
    const request: ConsistencyCheckRequest = { roundId: this.ctx.roundId, survivors };
    return this.openPhase('consistencyCheck', survivors, () => request);
  }

  /** Records a survivor's signature over the sharer and survivor lists after verifying it. */
  receiveConsistencyCheck(clientId: string, payload: unknown): Promise<void> {
    return this.gate.accept('consistencyCheck', clientId, async () => {
      const res = parseSecAggMessage('consistencyCheckResponse', payload);
      this.checkRound(res.roundId);
      const message = consistencyBytes(this.view!.hash, this.sharers, this.survivors);
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
   * (else aborts now rather than after clients refuse), and sends every signer the signed
   * lists plus the MaskedInput signatures of its surviving neighbours.
   */
  closeConsistencyCheck(): Map<string, UnmaskingRequest> {
    const signers = this.closeGate('consistencyCheck');
    this.signers = signers;
    const view = this.view!;
    const alive = new Set(this.survivors);
    const dropped = this.sharers.filter((id) => !alive.has(id));
    try {
      assertReconstructible(
        view.graph,
        this.sharers,
        alive,
        new Set(signers),
        view.params.threshold,
      );
    } catch (err) {
      this.abort();
      throw err;
    }
    const signatures: SurvivorSignature[] = signers.map((id) => ({
      clientId: id,
      signature: this.signatures.get(id)!,
    }));
    return this.openPhase('unmasking', signers, (id) => ({
      roundId: this.ctx.roundId,
      survivors: this.survivors,
      dropped,
      signatures,
      inputSignatures: view.graph
        .neighboursOf(id)
        .filter((n) => alive.has(n))
        .map((n) => ({ clientId: n, signature: this.inputSignatures.get(n)! })),
    }));
  }

  /**
   * Records revealed shares: self-mask shares only of survivors, secret-key shares only of
   * dropped clients, only of owners the sender holds shares of, each owner once.
   */
  receiveUnmasking(clientId: string, payload: unknown): Promise<void> {
    return this.gate.accept('unmasking', clientId, () => {
      const res = parseSecAggMessage('unmaskingResponse', payload);
      this.checkRound(res.roundId);
      const graph = this.view!.graph;
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
      const t = this.view!.params.threshold;
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
   * Routes one response to its phase's `receive*` method, so every transport (sockets, the
   * in-memory driver, benchmarks) dispatches the same way.
   */
  receive(phase: SecAggPhase, clientId: string, payload: unknown): Promise<void> {
    switch (phase) {
      case 'advertiseKeys':
        return this.receiveAdvertiseKeys(clientId, payload);
      case 'shareKeys':
        return this.receiveShareKeys(clientId, payload);
      case 'maskedInput':
        return this.receiveMaskedInput(clientId, payload);
      case 'consistencyCheck':
        return this.receiveConsistencyCheck(clientId, payload);
      case 'unmasking':
        return this.receiveUnmasking(clientId, payload);
    }
  }

  /**
   * Ends the round: rebuilds each survivor's self-mask seed and each dropped neighbour's
   * masking key, removes all masks and decodes the weighted mean. Any shortfall or bad
   * reconstruction aborts the round and outputs nothing.
   */
  async finish(): Promise<SecAggResult> {
    this.gate.beginFinish();
    this.closeGate('unmasking'); // at least t clients must have answered
    try {
      const alive = new Set(this.survivors);
      const result = await reconstructAggregate({
        roundId: this.ctx.roundId,
        config: this.options.config,
        threshold: this.view!.params.threshold,
        graph: this.view!.graph,
        accumulator: this.accumulator!,
        survivors: this.survivors,
        dropped: this.sharers.filter((id) => !alive.has(id)),
        keys: this.keys,
        selfMaskShares: this.selfMaskShares,
        secretKeyShares: this.secretKeyShares,
        ...(this.options.removeMasks ? { removeMasks: this.options.removeMasks } : {}),
      });
      this.gate.markDone();
      this.release();
      return result;
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** Abandons the round (deadline policy, shutdown): wipes the partial sum; nothing is output. */
  abort(): void {
    if (this.gate.phase === 'done') return;
    this.gate.abort();
    this.release();
  }

  private release(): void {
    this.accumulator?.fill(0);
    this.accumulator = undefined;
    this.bundles = new Map();
    this.selfMaskShares.clear();
    this.secretKeyShares.clear();
  }

  private async verifyInputSignature(clientId: string, signature: Uint8Array): Promise<void> {
    const message = maskedInputBytes(this.view!.hash, this.sharers);
    if (!(await verifySignature(message, signature, this.cohort.get(clientId)!))) {
      throw new CohortError(
        'SECAGG_SIGNATURE',
        `masked input of ${clientId} is not signed over the sharer list`,
      );
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

  /** Closes a phase; below t, the whole round aborts and its partial state is wiped. */
  private closeGate(phase: SecAggServerPhase): string[] {
    try {
      return this.gate.close(phase);
    } catch (err) {
      if (this.gate.phase === 'aborted') this.abort();
      throw err;
    }
  }

  private openPhase<R>(
    phase: SecAggServerPhase,
    ids: string[],
    build: (id: string) => R,
  ): Map<string, R> {
    this.gate.open(phase, ids);
    return new Map(ids.map((id) => [id, build(id)] as const));
  }
}
