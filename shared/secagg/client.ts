import nacl from 'tweetnacl';
import { CohortError } from '../errors';
import type { SigningIdentity } from '../identity';
import { clientIdFromPublicKey } from '../identity';
import {
  IdentityChecker,
  assertIncludesSelf,
  assertNeighbourhood,
  assertSubset,
  checkInputSignatures,
  checkSurvivorConfirmations,
  checkUnmaskingLists,
} from './client-checks';
import { forgetCachedKeys, generateBoxKeyPair, signMessage } from './crypto-primitives';
import { bytesEqual, wipe } from './encoding';
import { assertSortedUnique } from './graph';
import type {
  AdvertiseKeysResponse,
  ConsistencyCheckResponse,
  MaskedInputResponse,
  OutgoingBundle,
  RevealedShare,
  ShareKeysResponse,
  UnmaskingResponse,
} from './messages';
import { parseSecAggMessage } from './messages';
import { packLowBits } from './packing';
import type { SecAggConfig } from './params';
import { DEFAULT_MIN_PARTICIPANTS, MIN_THRESHOLD, assertSafeConfig, configHash } from './params';
import { addMask } from './prg';
import type { RandomFill, SecAggInput } from './quantize';
import { cryptoRandomFill, quantizeWeightedUpdate } from './quantize';
import type { RoundLedger } from './round-ledger';
import { MemoryRoundLedger, roundLedgerKey } from './round-ledger';
import type { RoundView } from './round-view';
import { buildRoundView } from './round-view';
import { splitSecret } from './shamir';
import type { RoundContext } from './signed-payloads';
import {
  advertisementBytes,
  consistencyBytes,
  maskedInputBytes,
  openBundle,
  pairwiseSeed,
  pairwiseSign,
  sealBundle,
} from './signed-payloads';

/** Options of a {@link SecAggClientSession}. */
export interface SecAggClientOptions {
  /** The client's long-term Ed25519 identity; its id is derived from the public key. */
  identity: SigningIdentity;
  /** Id of the coordinator this client registered with (the hash of its key). */
  coordinatorId: string;
  /** Experiment announced at registration. */
  experiment: string;
  /** The round this session belongs to; any message for another round is refused. */
  roundId: string;
  /** Hash of the global model this client trained on; a different one is refused. */
  modelHash: string;
  /** What this client contributes; read at MaskedInput (its owner wipes it afterwards). */
  input: SecAggInput;
  /**
   * Pinned identity public keys (e.g. certified by a registrar). When given, every
   * participant of the round must be listed, so the coordinator cannot invent clients.
   */
  knownIdentityKeys?: Iterable<Uint8Array>;
  /**
   * The registrar's public key (shared/registrar.ts): when given, every participant's
   * advertisement must carry the registrar's certificate of its identity key.
   */
  registrarKey?: Uint8Array;
  /** Smallest participant count accepted (default {@link DEFAULT_MIN_PARTICIPANTS}, at least 3). */
  minParticipants?: number;
  /**
   * Rounds this client already revealed shares in, persisted with its identity. Defaults to a
   * ledger of this session alone, which refuses nothing across sessions: pass the client's.
   */
  ledger?: RoundLedger;
  /** Random source for stochastic rounding (default: crypto.getRandomValues). */
  randomFill?: RandomFill;
}

/** Where a client session stands: the phase it expects next, or finished. */
export type SecAggClientPhase =
  | 'advertiseKeys'
  | 'shareKeys'
  | 'maskedInput'
  | 'consistencyCheck'
  | 'unmasking'
  | 'done'
  | 'failed';

/** The five protocol phases, in the order a round runs them. */
export type SecAggPhase = Exclude<SecAggClientPhase, 'done' | 'failed'>;

/** The five protocol phases in order: the one list every driver iterates. */
export const SECAGG_PHASES: readonly SecAggPhase[] = [
  'advertiseKeys',
  'shareKeys',
  'maskedInput',
  'consistencyCheck',
  'unmasking',
];

/** True when `phase` names a protocol phase. */
export function isSecAggPhase(phase: string): phase is SecAggPhase {
  return (SECAGG_PHASES as readonly string[]).includes(phase);
}

interface HeldShares {
  selfMaskShare: Uint8Array;
  secretKeyShare: Uint8Array;
}

/**
 * The honest client of one secure-aggregation round (Bonawitz et al. 2017 with the SecAgg+
 * graph). One instance per (client, round). Each phase method takes the coordinator's request
 * as untrusted data and returns the response to send back; it assumes the coordinator is
 * malicious and may lie to every client differently, and checks everything before revealing
 * anything:
 *
 * - the round names the coordinator and experiment it registered with, a model it trained on,
 *   a config whose scale it derives itself, and a round id it never revealed shares in;
 * - the advertisement list is verified whole (every signature, every identity pinned when
 *   pinning), and its hash — the round view — seeds the graph, is sealed into every share
 *   bundle and is signed in the consistency check, so all honest clients that go on share one
 *   view; k and t are derived from the participant count, never taken from the coordinator;
 * - at every phase at least t of its *own* share holders must still be in the list shown;
 * - before revealing a survivor's self-mask share, t holders of every owner concerned signed
 *   the same sharer and survivor lists, and the survivor signed (with its masked input) the
 *   sharer list this client was shown, so its pairwise masks with live holders stay in place.
 *
 * Phases run strictly in order and once; the first error aborts the session for good and
 * wipes its secrets, so a refused request cannot be retried with a variation.
 */
export class SecAggClientSession {
  /** This client's id (derived from its identity key, never chosen). */
  readonly clientId: string;
  private state: SecAggClientPhase = 'advertiseKeys';
  private busy = false;
  private readonly identities: IdentityChecker;
  private readonly randomFill: RandomFill;
  private readonly ledger: RoundLedger;
  private readonly ledgerKey: string;
  private readonly minParticipants: number;
  private config: SecAggConfig | undefined;
  private ctx: RoundContext | undefined;
  private cKeys: nacl.BoxKeyPair | undefined;
  private sKeys: nacl.BoxKeyPair | undefined;
  private view: RoundView | undefined;
  private selfMaskSeed: Uint8Array | undefined;
  private readonly held = new Map<string, HeldShares>();
  private sharers: string[] | undefined;
  private survivors: string[] | undefined;

  constructor(private readonly options: SecAggClientOptions) {
    this.clientId = clientIdFromPublicKey(options.identity.publicKey);
    this.randomFill = options.randomFill ?? cryptoRandomFill;
    this.identities = new IdentityChecker(options.knownIdentityKeys, options.registrarKey);
    this.ledger = options.ledger ?? new MemoryRoundLedger();
    this.ledgerKey = roundLedgerKey(options.coordinatorId, options.experiment, options.roundId);
    const min = options.minParticipants ?? DEFAULT_MIN_PARTICIPANTS;
    if (!Number.isInteger(min) || min < MIN_THRESHOLD) {
      throw new CohortError(
        'CONFIG_INVALID',
        `minParticipants must be an integer >= ${MIN_THRESHOLD}, got ${min}`,
      );
    }
    this.minParticipants = min;
  }

  /** The phase this session expects next ('done' after unmasking, 'failed' after any error). */
  get phase(): SecAggClientPhase {
    return this.state;
  }

  /**
   * Phase 0: checks the round's coordinator, experiment, model, config and round id, then
   * creates and signs fresh X25519 pairs.
   */
  advertiseKeys(request: unknown): Promise<AdvertiseKeysResponse> {
    return this.run('advertiseKeys', 'shareKeys', async () => {
      const req = parseSecAggMessage('advertiseKeysRequest', request);
      this.checkRound(req.roundId);
      if (
        req.coordinatorId !== this.options.coordinatorId ||
        req.experiment !== this.options.experiment
      ) {
        throw new CohortError(
          'SECAGG_INCONSISTENT',
          'the round names another coordinator or experiment than this client registered with',
        );
      }
      if (req.modelHash !== this.options.modelHash) {
        throw new CohortError(
          'MODEL_HASH_MISMATCH',
          'the round names a model this client did not train on',
        );
      }
      assertSafeConfig(req.config);
      if (req.config.vectorLength !== this.options.input.update.length) {
        throw new CohortError(
          'UPDATE_SHAPE',
          `the round expects ${req.config.vectorLength} values, this client's update has ${this.options.input.update.length}`,
        );
      }
      await this.refuseRepeatedRound();
      this.config = Object.freeze({ ...req.config });
      this.ctx = {
        coordinatorId: req.coordinatorId,
        experiment: req.experiment,
        roundId: req.roundId,
        modelHash: req.modelHash,
        configHash: configHash(this.config),
      };
      this.cKeys = await generateBoxKeyPair();
      this.sKeys = await generateBoxKeyPair();
      const signature = await signMessage(
        advertisementBytes(this.ctx, this.clientId, this.cKeys.publicKey, this.sKeys.publicKey),
        this.options.identity,
      );
      return {
        roundId: req.roundId,
        cPublicKey: this.cKeys.publicKey,
        sPublicKey: this.sKeys.publicKey,
        signature,
      };
    });
  }

  /**
   * Phase 1: verifies the whole signed advertisement list (its own entry unaltered, every
   * other signature and identity), derives the round view, k, t and the graph from it,
   * Shamir-shares the fresh self-mask seed b and the masking secret key among its holders,
   * and seals each neighbour's bundle under the view hash.
   */
  shareKeys(request: unknown): Promise<ShareKeysResponse> {
    return this.run('shareKeys', 'maskedInput', async () => {
      const req = parseSecAggMessage('shareKeysRequest', request);
      const { config, ctx, cKeys, sKeys } = this.ready();
      this.checkRound(req.roundId);
      const own = req.advertisements.find((a) => a.clientId === this.clientId);
      if (
        !own ||
        !bytesEqual(own.identityPublicKey, this.options.identity.publicKey) ||
        !bytesEqual(own.cPublicKey, cKeys.publicKey) ||
        !bytesEqual(own.sPublicKey, sKeys.publicKey)
      ) {
        throw new CohortError(
          'SECAGG_INCONSISTENT',
          'the advertisement list lacks this client or alters its keys',
        );
      }
      const n = req.advertisements.length;
      if (n > config.maxClients) {
        throw new CohortError(
          'CONFIG_UNSAFE',
          `${n} participants, more than the ${config.maxClients} the config was sized for`,
        );
      }
      if (n < this.minParticipants) {
        throw new CohortError(
          'SECAGG_BELOW_THRESHOLD',
          `${n} participants; this client takes part in secure rounds of at least ${this.minParticipants}`,
        );
      }
      const view = buildRoundView(ctx, req.advertisements);
      await Promise.all(
        req.advertisements
          .filter((a) => a.clientId !== this.clientId)
          .map((a) => this.identities.verifyAdvertisement(a, ctx)),
      );
      this.view = view;
      const holders = view.graph.holdersOf(this.clientId);
      const seed = nacl.randomBytes(32);
      this.selfMaskSeed = seed;
      const t = view.params.threshold;
      const selfMaskShares = await splitSecret(seed, holders.length, t);
      const secretKeyShares = await splitSecret(sKeys.secretKey, holders.length, t);
      // Sealing is independent per holder: run the key agreements concurrently.
      const sealed = await Promise.all(
        holders.map(async (holder, j): Promise<OutgoingBundle | null> => {
          const shares = {
            selfMaskShare: selfMaskShares[j]!,
            secretKeyShare: secretKeyShares[j]!,
          };
          if (holder === this.clientId) {
            this.held.set(holder, shares);
            return null;
          }
          const box = await sealBundle(
            { viewHash: view.hash, senderId: this.clientId, recipientId: holder, ...shares },
            view.keys.get(holder)!.cPublicKey,
            cKeys.secretKey,
          );
          wipe(shares.selfMaskShare, shares.secretKeyShare);
          return { recipientId: holder, ...box };
        }),
      );
      const bundles = sealed.filter((b): b is OutgoingBundle => b !== null);
      return { roundId: ctx.roundId, bundles };
    });
  }

  /**
   * Phase 2: requires t of its own holders among the key sharers, opens the bundles of
   * neighbours who shared keys (sealed under the same view), then returns
   * quantize(input) + PRG(b) + sum of +-PRG(s_uv) over those neighbours, mod 2^32, packed to
   * the config's modulusBits low bits per element, with a signature over the sharer list it
   * masked against.
   */
  maskedInput(request: unknown): Promise<MaskedInputResponse> {
    return this.run('maskedInput', 'consistencyCheck', async () => {
      const req = parseSecAggMessage('maskedInputRequest', request);
      const { config, ctx, cKeys, sKeys } = this.ready();
      const view = this.view!;
      this.checkRound(req.roundId);
      assertSortedUnique(req.sharers, 'key sharers');
      assertSubset(req.sharers, new Set(view.participants), 'key sharers');
      assertIncludesSelf(req.sharers, this.clientId, 'key sharers');
      const sharers = new Set(req.sharers);
      assertNeighbourhood(
        sharers,
        view.graph.holdersOf(this.clientId),
        view.params.threshold,
        'key sharers',
      );
      const senders = view.graph.neighboursOf(this.clientId).filter((id) => sharers.has(id));
      const bundles = new Map(req.bundles.map((b) => [b.senderId, b] as const));
      if (bundles.size !== req.bundles.length || bundles.size !== senders.length) {
        throw new CohortError('SECAGG_INCONSISTENT', 'share bundles do not match the key sharers');
      }
      for (const sender of senders) {
        if (!bundles.has(sender))
          throw new CohortError('SECAGG_INCONSISTENT', `no bundle from key sharer ${sender}`);
      }
      // Every bundle must open before anything is masked; the agreements run concurrently.
      const opened = await Promise.all(
        senders.map((sender) => {
          const bundle = bundles.get(sender)!;
          return openBundle(
            { viewHash: view.hash, senderId: sender, recipientId: this.clientId },
            bundle.nonce,
            bundle.ciphertext,
            view.keys.get(sender)!.cPublicKey,
            cKeys.secretKey,
          );
        }),
      );
      for (const bundle of opened) {
        this.held.set(bundle.senderId, {
          selfMaskShare: bundle.selfMaskShare,
          secretKeyShare: bundle.secretKeyShare,
        });
      }
      this.sharers = [...req.sharers];
      const vector = quantizeWeightedUpdate(this.options.input, config, this.randomFill);
      await addMask(vector, this.selfMaskSeed!, 1);
      const seeds = await Promise.all(
        senders.map((other) =>
          pairwiseSeed(ctx.roundId, sKeys.secretKey, view.keys.get(other)!.sPublicKey),
        ),
      );
      for (const [i, other] of senders.entries()) {
        await addMask(vector, seeds[i]!, pairwiseSign(this.clientId, other));
        wipe(seeds[i]);
      }
      const signature = await signMessage(
        maskedInputBytes(view.hash, this.sharers),
        this.options.identity,
      );
      const maskedInput = packLowBits(vector, config.modulusBits);
      return { roundId: ctx.roundId, maskedInput, signature };
    });
  }

  /**
   * Phase 3: signs the view, the sharer list and the survivor list after checking that the
   * survivors are sharers it was shown, include itself, and keep t of its own holders.
   */
  consistencyCheck(request: unknown): Promise<ConsistencyCheckResponse> {
    return this.run('consistencyCheck', 'unmasking', async () => {
      const req = parseSecAggMessage('consistencyCheckRequest', request);
      const { ctx } = this.ready();
      const view = this.view!;
      this.checkRound(req.roundId);
      assertSortedUnique(req.survivors, 'survivors');
      assertSubset(req.survivors, new Set(this.sharers), 'survivors');
      assertIncludesSelf(req.survivors, this.clientId, 'survivors');
      assertNeighbourhood(
        new Set(req.survivors),
        view.graph.holdersOf(this.clientId),
        view.params.threshold,
        'survivors',
      );
      this.survivors = [...req.survivors];
      return {
        roundId: ctx.roundId,
        signature: await signMessage(
          consistencyBytes(view.hash, this.sharers!, req.survivors),
          this.options.identity,
        ),
      };
    });
  }

  /**
   * Routes one request to its phase's method, so every transport (sockets, the in-memory
   * driver, benchmarks) dispatches the same way.
   */
  answer(phase: SecAggPhase, request: unknown): Promise<unknown> {
    switch (phase) {
      case 'advertiseKeys':
        return this.advertiseKeys(request);
      case 'shareKeys':
        return this.shareKeys(request);
      case 'maskedInput':
        return this.maskedInput(request);
      case 'consistencyCheck':
        return this.consistencyCheck(request);
      case 'unmasking':
        return this.unmasking(request);
    }
  }

  /**
   * Phase 4, answered at most once per round id, ever: after checking that the survivor list
   * is the one this client signed, that the dropped list is exactly its key sharers minus the
   * survivors, that at least t share holders of every owner it holds shares of signed those
   * same lists, and that every surviving owner masked against the same sharer list, records
   * the round in the ledger and reveals the self-mask share of each survivor and the
   * secret-key share of each dropped client it holds shares of. Never both for one client.
   */
  unmasking(request: unknown): Promise<UnmaskingResponse> {
    return this.run('unmasking', 'done', async () => {
      const req = parseSecAggMessage('unmaskingRequest', request);
      const { ctx } = this.ready();
      const view = this.view!;
      this.checkRound(req.roundId);
      const alive = checkUnmaskingLists(req, this.survivors!, this.sharers!);
      const owners = [...this.held.keys()].sort();
      await checkSurvivorConfirmations({
        signatures: req.signatures,
        owners,
        view,
        message: consistencyBytes(view.hash, this.sharers!, this.survivors!),
      });
      await checkInputSignatures({
        inputSignatures: req.inputSignatures,
        owners: owners.filter((o) => o !== this.clientId && alive.has(o)),
        view,
        message: maskedInputBytes(view.hash, this.sharers!),
      });
      await this.refuseRepeatedRound();
      await this.ledger.record(this.ledgerKey);
      const selfMaskShares: RevealedShare[] = [];
      const secretKeyShares: RevealedShare[] = [];
      for (const owner of owners) {
        const shares = this.held.get(owner)!;
        // Exactly one kind per owner: alive -> self-mask share, dead -> secret-key share.
        if (alive.has(owner))
          selfMaskShares.push({ ownerId: owner, share: shares.selfMaskShare.slice() });
        else secretKeyShares.push({ ownerId: owner, share: shares.secretKeyShare.slice() });
      }
      return { roundId: ctx.roundId, selfMaskShares, secretKeyShares };
    });
  }

  private async refuseRepeatedRound(): Promise<void> {
    if (await this.ledger.has(this.ledgerKey)) {
      throw new CohortError(
        'SECAGG_REPLAY',
        `this client already revealed shares in round ${this.options.roundId}`,
      );
    }
  }

  private ready(): {
    config: SecAggConfig;
    ctx: RoundContext;
    cKeys: nacl.BoxKeyPair;
    sKeys: nacl.BoxKeyPair;
  } {
    if (!this.config || !this.ctx || !this.cKeys || !this.sKeys) {
      throw new CohortError('SECAGG_REPLAY', 'keys were never advertised');
    }
    return { config: this.config, ctx: this.ctx, cKeys: this.cKeys, sKeys: this.sKeys };
  }

  private checkRound(roundId: string): void {
    if (roundId !== this.options.roundId) {
      throw new CohortError(
        'UPDATE_STALE',
        `message for round ${roundId}, session is ${this.options.roundId}`,
      );
    }
  }

  private enter(phase: SecAggClientPhase): void {
    if (this.busy || this.state !== phase) {
      const why = this.busy
        ? 'while another phase is running'
        : `while the session is at ${this.state}`;
      if (this.state !== 'done') this.fail();
      throw new CohortError('SECAGG_REPLAY', `${phase} requested ${why}`);
    }
    this.busy = true;
  }

  private async run<T>(
    phase: SecAggClientPhase,
    next: SecAggClientPhase,
    body: () => T | Promise<T>,
  ): Promise<T> {
    this.enter(phase);
    try {
      const result = await body();
      if (this.state === 'failed') {
        throw new CohortError('SECAGG_REPLAY', `session aborted while ${phase} was running`);
      }
      this.state = next;
      if (next === 'done') this.wipeSecrets();
      return result;
    } catch (err) {
      this.fail();
      throw err;
    } finally {
      this.busy = false;
    }
  }

  /** Aborts the session for good (cancellation, disconnect): secrets and input are wiped. */
  abandon(): void {
    if (this.state !== 'done') this.fail();
  }

  private fail(): void {
    this.state = 'failed';
    this.wipeSecrets();
  }

  private wipeSecrets(): void {
    forgetCachedKeys(this.selfMaskSeed, this.sKeys?.secretKey, this.cKeys?.secretKey);
    wipe(this.selfMaskSeed, this.sKeys?.secretKey, this.cKeys?.secretKey);
    for (const shares of this.held.values()) wipe(shares.selfMaskShare, shares.secretKeyShare);
    this.held.clear();
    this.selfMaskSeed = undefined;
  }
}
