import { toHex } from '../bytes';
import nacl from 'tweetnacl';
import { CohortError } from '../errors';
import type { IdentityKeyPair } from '../identity';
import { clientIdFromPublicKey } from '../identity';
import {
  IdentityChecker,
  assertMembership,
  assertSubset,
  checkSurvivorConfirmations,
  checkUnmaskingLists,
} from './client-checks';
import { forgetCachedKeys, generateBoxKeyPair, signMessage } from './crypto-primitives';
import { uint32ToBytesLE, wipe } from './encoding';
import type { NeighbourGraph } from './graph';
import { assertSortedUnique, buildNeighbourGraph, graphSeed } from './graph';
import type {
  AdvertiseKeysResponse,
  AdvertisedKeys,
  ConsistencyCheckResponse,
  MaskedInputResponse,
  OutgoingBundle,
  RevealedShare,
  ShareKeysResponse,
  UnmaskingResponse,
} from './messages';
import { parseSecAggMessage } from './messages';
import type { SecAggConfig } from './params';
import { assertSafeConfig, configHash } from './params';
import { addMask } from './prg';
import type { RandomFill } from './quantize';
import { cryptoRandomFill, quantizeWeightedUpdate } from './quantize';
import { splitSecret } from './shamir';
import type { RoundContext } from './signed-payloads';
import {
  advertisementBytes,
  consistencyBytes,
  openBundle,
  pairwiseSeed,
  pairwiseSign,
  sealBundle,
} from './signed-payloads';

/** Options of a {@link SecAggClientSession}. */
export interface SecAggClientOptions {
  /** The client's long-term Ed25519 identity; its id is derived from the public key. */
  identity: IdentityKeyPair;
  /** The round this session belongs to; any message for another round is refused. */
  roundId: string;
  /** Hash of the global model this client trained on; a different one is refused. */
  modelHash: string;
  /**
   * Pinned identity public keys (e.g. certified by a registrar). When given, any participant
   * whose identity key is not listed is refused, so the coordinator cannot invent clients.
   */
  knownIdentityKeys?: Iterable<Uint8Array>;
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

interface HeldShares {
  selfMaskShare: Uint8Array;
  secretKeyShare: Uint8Array;
}

/**
 * The honest client of one secure-aggregation round (Bonawitz et al. 2017 with the SecAgg+
 * graph). One instance per (client, round). Each phase method takes the coordinator's request
 * as untrusted data and returns the response to send back; it assumes the coordinator may be
 * malicious and checks everything before revealing anything: signatures and identities of
 * every key, the model and config hashes, routing of sealed bundles, that each survivor list
 * shrinks monotonically and stays >= t, that the survivors signed the same list, and that no
 * client is ever both alive and dead. Phases run strictly in order and once; the first error
 * aborts the session for good and wipes its secrets, so a refused request cannot be retried
 * with a variation.
 */
export class SecAggClientSession {
  /** This client's id (derived from its identity key, never chosen). */
  readonly clientId: string;
  private state: SecAggClientPhase = 'advertiseKeys';
  private busy = false;
  private readonly identities: IdentityChecker;
  private readonly randomFill: RandomFill;
  private config: SecAggConfig | undefined;
  private ctx: RoundContext | undefined;
  private cKeys: nacl.BoxKeyPair | undefined;
  private sKeys: nacl.BoxKeyPair | undefined;
  private graph: NeighbourGraph | undefined;
  private readonly neighbourKeys = new Map<string, AdvertisedKeys>();
  private selfMaskSeed: Uint8Array | undefined;
  private readonly held = new Map<string, HeldShares>();
  private sharedKeys: Set<string> | undefined;
  private survivors: string[] | undefined;

  constructor(private readonly options: SecAggClientOptions) {
    this.clientId = clientIdFromPublicKey(options.identity.publicKey);
    this.randomFill = options.randomFill ?? cryptoRandomFill;
    this.identities = new IdentityChecker(options.knownIdentityKeys);
  }

  /** The phase this session expects next ('done' after unmasking, 'failed' after any error). */
  get phase(): SecAggClientPhase {
    return this.state;
  }

  /** Phase 0: checks the round's model and config, creates and signs fresh X25519 pairs. */
  advertiseKeys(request: unknown): Promise<AdvertiseKeysResponse> {
    return this.run('advertiseKeys', 'shareKeys', async () => {
      const req = parseSecAggMessage('advertiseKeysRequest', request);
      this.checkRound(req.roundId);
      if (req.modelHash !== this.options.modelHash) {
        throw new CohortError(
          'MODEL_HASH_MISMATCH',
          'the round names a model this client did not train on',
        );
      }
      assertSafeConfig(req.config);
      this.config = Object.freeze({ ...req.config });
      this.ctx = {
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
   * Phase 1: verifies every neighbour's signed keys, Shamir-shares the fresh self-mask seed b
   * and the masking secret key among the neighbourhood, and seals each neighbour's bundle.
   */
  shareKeys(request: unknown): Promise<ShareKeysResponse> {
    return this.run('shareKeys', 'maskedInput', async () => {
      const req = parseSecAggMessage('shareKeysRequest', request);
      const { config, ctx, cKeys, sKeys } = this.ready();
      this.checkRound(req.roundId);
      assertSortedUnique(req.participants, 'participants');
      assertMembership(req.participants, this.clientId, config.threshold, 'participants');
      if (req.participants.length > config.maxClients) {
        throw new CohortError('CONFIG_UNSAFE', 'more participants than the config was sized for');
      }
      const graph = buildNeighbourGraph(
        req.participants,
        config.neighbours,
        graphSeed(ctx.roundId, ctx.configHash, req.participants),
      );
      const expected = new Set(graph.neighboursOf(this.clientId));
      const seenKeys = new Set([toHex(cKeys.publicKey), toHex(sKeys.publicKey)]);
      for (const entry of req.neighbours) {
        if (!expected.has(entry.clientId) || this.neighbourKeys.has(entry.clientId)) {
          throw new CohortError(
            'SECAGG_INCONSISTENT',
            `unexpected or repeated neighbour ${entry.clientId}`,
          );
        }
        for (const k of [entry.cPublicKey, entry.sPublicKey]) {
          const hex = toHex(k);
          if (seenKeys.has(hex))
            throw new CohortError('SECAGG_INCONSISTENT', 'a public key appears twice');
          seenKeys.add(hex);
        }
        this.neighbourKeys.set(entry.clientId, entry);
      }
      if (this.neighbourKeys.size !== expected.size) {
        throw new CohortError('SECAGG_INCONSISTENT', 'the keys of some neighbours are missing');
      }
      await Promise.all(
        req.neighbours.map((entry) => this.identities.verifyAdvertisement(entry, ctx)),
      );
      this.graph = graph;
      const holders = graph.holdersOf(this.clientId);
      const seed = nacl.randomBytes(32);
      this.selfMaskSeed = seed;
      const selfMaskShares = await splitSecret(seed, holders.length, config.threshold);
      const secretKeyShares = await splitSecret(sKeys.secretKey, holders.length, config.threshold);
      const bundles: OutgoingBundle[] = [];
      for (const [j, holder] of holders.entries()) {
        const shares = { selfMaskShare: selfMaskShares[j]!, secretKeyShare: secretKeyShares[j]! };
        if (holder === this.clientId) {
          this.held.set(holder, shares);
          continue;
        }
        const sealed = await sealBundle(
          { roundId: ctx.roundId, senderId: this.clientId, recipientId: holder, ...shares },
          this.neighbourKeys.get(holder)!.cPublicKey,
          cKeys.secretKey,
        );
        wipe(shares.selfMaskShare, shares.secretKeyShare);
        bundles.push({ recipientId: holder, ...sealed });
      }
      return { roundId: ctx.roundId, bundles };
    });
  }

  /**
   * Phase 2: opens the bundles of neighbours who shared keys, then returns
   * quantize(update) + PRG(b) + sum of +-PRG(s_uv) over those neighbours, mod 2^32.
   */
  maskedInput(
    request: unknown,
    update: Float32Array,
    exampleCount: number,
  ): Promise<MaskedInputResponse> {
    return this.run('maskedInput', 'consistencyCheck', async () => {
      const req = parseSecAggMessage('maskedInputRequest', request);
      const { config, ctx, cKeys, sKeys } = this.ready();
      const graph = this.graph!;
      this.checkRound(req.roundId);
      assertSortedUnique(req.participants, 'participants');
      assertSubset(req.participants, new Set(graph.participants), 'key sharers');
      assertMembership(req.participants, this.clientId, config.threshold, 'key sharers');
      const sharers = new Set(req.participants);
      const senders = graph.neighboursOf(this.clientId).filter((id) => sharers.has(id));
      const bundles = new Map(req.bundles.map((b) => [b.senderId, b] as const));
      if (bundles.size !== req.bundles.length || bundles.size !== senders.length) {
        throw new CohortError('SECAGG_INCONSISTENT', 'share bundles do not match the key sharers');
      }
      for (const sender of senders) {
        const bundle = bundles.get(sender);
        if (!bundle)
          throw new CohortError('SECAGG_INCONSISTENT', `no bundle from key sharer ${sender}`);
        const opened = await openBundle(
          { roundId: ctx.roundId, senderId: sender, recipientId: this.clientId },
          bundle.nonce,
          bundle.ciphertext,
          this.neighbourKeys.get(sender)!.cPublicKey,
          cKeys.secretKey,
        );
        this.held.set(sender, {
          selfMaskShare: opened.selfMaskShare,
          secretKeyShare: opened.secretKeyShare,
        });
      }
      this.sharedKeys = sharers;
      const vector = quantizeWeightedUpdate(update, exampleCount, config, this.randomFill);
      await addMask(vector, this.selfMaskSeed!, 1);
      for (const other of senders) {
        const seed = await pairwiseSeed(
          ctx.roundId,
          sKeys.secretKey,
          this.neighbourKeys.get(other)!.sPublicKey,
        );
        await addMask(vector, seed, pairwiseSign(this.clientId, other));
        wipe(seed);
      }
      return { roundId: ctx.roundId, maskedInput: uint32ToBytesLE(vector) };
    });
  }

  /** Phase 3: signs the survivor list after checking it only shrank and is still >= t. */
  consistencyCheck(request: unknown): Promise<ConsistencyCheckResponse> {
    return this.run('consistencyCheck', 'unmasking', async () => {
      const req = parseSecAggMessage('consistencyCheckRequest', request);
      const { ctx } = this.ready();
      this.checkRound(req.roundId);
      assertSortedUnique(req.survivors, 'survivors');
      assertSubset(req.survivors, this.sharedKeys!, 'survivors');
      assertMembership(req.survivors, this.clientId, this.config!.threshold, 'survivors');
      this.survivors = [...req.survivors];
      return {
        roundId: ctx.roundId,
        signature: await signMessage(consistencyBytes(ctx, req.survivors), this.options.identity),
      };
    });
  }

  /**
   * Routes one request to its phase's method, so every transport (sockets, the in-memory
   * driver, benchmarks) dispatches the same way; `input` is only read by MaskedInput.
   */
  answer(
    phase: SecAggPhase,
    request: unknown,
    input: { update: Float32Array; exampleCount: number },
  ): Promise<unknown> {
    switch (phase) {
      case 'advertiseKeys':
        return this.advertiseKeys(request);
      case 'shareKeys':
        return this.shareKeys(request);
      case 'maskedInput':
        return this.maskedInput(request, input.update, input.exampleCount);
      case 'consistencyCheck':
        return this.consistencyCheck(request);
      case 'unmasking':
        return this.unmasking(request);
    }
  }

  /**
   * Phase 4, answered at most once: after checking that the survivor list is the one this
   * client signed, that the dropped list is exactly the key sharers minus the survivors, and
   * that at least t share holders of every client concerned signed that same list, reveals the
   * self-mask share of each survivor and the secret-key share of each dropped client it holds
   * shares of. Never both for one client.
   */
  unmasking(request: unknown): Promise<UnmaskingResponse> {
    return this.run('unmasking', 'done', async () => {
      const req = parseSecAggMessage('unmaskingRequest', request);
      const { config, ctx } = this.ready();
      const graph = this.graph!;
      this.checkRound(req.roundId);
      const alive = checkUnmaskingLists(req, this.survivors!, this.sharedKeys!, config.threshold);
      const owners = [...this.held.keys()].sort();
      await checkSurvivorConfirmations({
        signatures: req.signatures,
        owners,
        graph,
        message: consistencyBytes(ctx, this.survivors!),
        threshold: config.threshold,
        identities: this.identities,
        knownIdentityKey: (id) => this.neighbourKeys.get(id)?.identityPublicKey,
      });
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
