import nacl from 'tweetnacl';
import { toHex } from '../../shared/bytes';
import type { IdentityKeyPair } from '../../shared/identity';
import { clientIdFromPublicKey, signDetached } from '../../shared/identity';
import type {
  AdvertisedKeys,
  IncomingBundle,
  RoundLedger,
  RoundView,
  SecAggConfig,
  SecAggInput,
  ShareKeysResponse,
  SurvivorSignature,
  UnmaskingResponse,
} from '../../shared/secagg';
import {
  IN_MEMORY_COORDINATOR_ID,
  IN_MEMORY_EXPERIMENT,
  MASKED_EXTRA_ELEMENTS,
  SecAggClientSession,
  addMask,
  buildRoundView,
  toSignedBits,
  combineShares,
  configHash,
  splitSecret,
} from '../../shared/secagg';
import { x25519PublicKey } from '../../shared/secagg/crypto-primitives';
import { bytesEqual } from '../../shared/secagg/encoding';
import { addPackedInto, packedElementBytes } from '../../shared/secagg/packing';
import type { RoundContext } from '../../shared/secagg/signed-payloads';
import {
  advertisementBytes,
  consistencyBytes,
  maskedInputBytes,
  openBundle,
  pairwiseSeed,
  pairwiseSign,
  sealBundle,
} from '../../shared/secagg/signed-payloads';

/**
 * A malicious coordinator for tests: it drives real honest client sessions with whatever it
 * likes, may control corrupt clients (it knows all their secrets and signs anything with
 * their keys), remembers everything it receives, and then tries to reconstruct an honest
 * client's individual update from that knowledge with {@link Arena.recover}. The oracle is
 * generic — it does not know which attack was played — so a test asserting that it yields
 * nothing shows the attack failed, and a control run beyond the documented colluder bound
 * shows the oracle really can recover an update when the protection is gone.
 */

/** A client the adversary controls: keys, secrets and signatures at its disposal. */
class CorruptClient {
  readonly id: string;
  readonly cKeys = nacl.box.keyPair();
  readonly sKeys = nacl.box.keyPair();
  readonly selfMaskSeed = nacl.randomBytes(32);
  private readonly shares = new Map<string, { b: Uint8Array[]; s: Uint8Array[] }>();

  constructor(readonly identity: IdentityKeyPair) {
    this.id = clientIdFromPublicKey(identity.publicKey);
  }

  advertise(ctx: RoundContext): AdvertisedKeys {
    return {
      clientId: this.id,
      identityPublicKey: this.identity.publicKey,
      cPublicKey: this.cKeys.publicKey,
      sPublicKey: this.sKeys.publicKey,
      signature: signDetached(
        advertisementBytes(ctx, this.id, this.cKeys.publicKey, this.sKeys.publicKey),
        this.identity,
      ),
    };
  }

  sign(message: Uint8Array): Uint8Array {
    return signDetached(message, this.identity);
  }

  /** A valid bundle for `recipient` under `view` (its own secrets, split for that view). */
  async bundleFor(view: RoundView, recipient: string) {
    const key = toHex(view.hash);
    let split = this.shares.get(key);
    if (!split) {
      const holders = view.graph.holdersOf(this.id).length;
      split = {
        b: await splitSecret(this.selfMaskSeed, holders, view.params.threshold),
        s: await splitSecret(this.sKeys.secretKey, holders, view.params.threshold),
      };
      this.shares.set(key, split);
    }
    const j = view.graph.holdersOf(this.id).indexOf(recipient);
    const sealed = await sealBundle(
      {
        viewHash: view.hash,
        senderId: this.id,
        recipientId: recipient,
        selfMaskShare: split.b[j]!,
        secretKeyShare: split.s[j]!,
      },
      view.keys.get(recipient)!.cPublicKey,
      this.cKeys.secretKey,
    );
    return { senderId: this.id, ...sealed };
  }
}

/** Shares and secrets the adversary has learnt, by owner. */
class Knowledge {
  readonly selfMaskShares = new Map<string, Map<string, Uint8Array>>();
  readonly secretKeyShares = new Map<string, Map<string, Uint8Array>>();

  add(kind: 'b' | 's', owner: string, share: Uint8Array): void {
    const map = kind === 'b' ? this.selfMaskShares : this.secretKeyShares;
    const list = map.get(owner) ?? new Map<string, Uint8Array>();
    list.set(toHex(share), share.slice());
    map.set(owner, list);
  }

  async combine(kind: 'b' | 's', owner: string, threshold: number): Promise<Uint8Array | null> {
    const map = kind === 'b' ? this.selfMaskShares : this.secretKeyShares;
    const list = [...(map.get(owner)?.values() ?? [])];
    if (list.length < threshold) return null;
    try {
      return await combineShares(list, threshold);
    } catch {
      return null;
    }
  }
}

/** An honest client in the arena: the real session and what it was shown. */
interface HonestClient {
  identity: IdentityKeyPair;
  session: SecAggClientSession;
  input: SecAggInput;
  view?: RoundView;
  sharers?: string[];
  survivors?: string[];
  shareKeys?: ShareKeysResponse;
  maskedInput?: Uint8Array;
  maskedInputSignature?: Uint8Array;
  consistencySignature?: Uint8Array;
  error?: unknown;
}

/** Options of an {@link Arena}. */
export interface ArenaOptions {
  roundId: string;
  modelHash: string;
  config: SecAggConfig;
  honest: { identity: IdentityKeyPair; input: SecAggInput; knownIdentityKeys?: Uint8Array[] }[];
  corrupt?: IdentityKeyPair[];
  minParticipants?: number;
  ledger?: (clientId: string) => RoundLedger | undefined;
  experiment?: string;
  /** Honest clients pinned to this registrar key (they check every member's certificate). */
  registrarKey?: Uint8Array;
  /** The certificate the coordinator relays with each client's advertisement, by client id. */
  certificates?: ReadonlyMap<string, Uint8Array>;
  /** A coordinator lying about the round's config: what it sends this honest client instead. */
  configFor?: (clientId: string) => SecAggConfig | undefined;
}

/** The malicious coordinator's playground; see the module comment. */
export class Arena {
  readonly ctx: RoundContext;
  readonly honest = new Map<string, HonestClient>();
  readonly corrupt = new Map<string, CorruptClient>();
  readonly adverts = new Map<string, AdvertisedKeys>();
  readonly knowledge = new Knowledge();

  constructor(private readonly options: ArenaOptions) {
    this.ctx = {
      coordinatorId: IN_MEMORY_COORDINATOR_ID,
      experiment: options.experiment ?? IN_MEMORY_EXPERIMENT,
      roundId: options.roundId,
      modelHash: options.modelHash,
      configHash: configHash(options.config),
    };
    for (const h of options.honest) {
      const id = clientIdFromPublicKey(h.identity.publicKey);
      const ledger = options.ledger?.(id);
      this.honest.set(id, {
        identity: h.identity,
        input: h.input,
        session: new SecAggClientSession({
          identity: h.identity,
          coordinatorId: this.ctx.coordinatorId,
          experiment: this.ctx.experiment,
          roundId: options.roundId,
          modelHash: options.modelHash,
          input: h.input,
          minParticipants: options.minParticipants ?? 3,
          ...(h.knownIdentityKeys ? { knownIdentityKeys: h.knownIdentityKeys } : {}),
          ...(options.registrarKey ? { registrarKey: options.registrarKey } : {}),
          ...(ledger ? { ledger } : {}),
        }),
      });
    }
    for (const identity of options.corrupt ?? []) {
      const c = new CorruptClient(identity);
      this.corrupt.set(c.id, c);
    }
  }

  /** Every client id, sorted. */
  get ids(): string[] {
    return [...this.honest.keys(), ...this.corrupt.keys()].sort();
  }

  private async attempt<T>(id: string, step: () => Promise<T>): Promise<T | undefined> {
    const h = this.honest.get(id)!;
    if (h.error !== undefined) return undefined;
    try {
      return await step();
    } catch (err) {
      h.error = err;
      return undefined;
    }
  }

  /** Phase 0 for everyone (the honest request). */
  async advertiseAll(): Promise<void> {
    for (const [id, h] of this.honest) {
      const res = await this.attempt(id, () =>
        h.session.advertiseKeys({
          coordinatorId: this.ctx.coordinatorId,
          experiment: this.ctx.experiment,
          roundId: this.ctx.roundId,
          modelHash: this.ctx.modelHash,
          config: this.configOf(id),
        }),
      );
      if (!res) continue;
      this.adverts.set(id, {
        clientId: id,
        identityPublicKey: h.identity.publicKey,
        cPublicKey: res.cPublicKey,
        sPublicKey: res.sPublicKey,
        signature: res.signature,
      });
    }
    for (const c of this.corrupt.values()) this.adverts.set(c.id, c.advertise(this.ctx));
    for (const [id, certificate] of this.options.certificates ?? []) {
      const advert = this.adverts.get(id);
      if (advert) this.adverts.set(id, { ...advert, certificate });
    }
  }

  /** The view built from these participants' advertisements. */
  viewOf(participants: readonly string[]): RoundView {
    return buildRoundView(
      this.ctx,
      [...participants].sort().map((p) => this.adverts.get(p)!),
    );
  }

  /** Phase 1 for one honest client, shown this participant set. */
  async shareKeys(id: string, participants: readonly string[]): Promise<void> {
    const h = this.honest.get(id)!;
    const advertisements = [...participants].sort().map((p) => this.adverts.get(p)!);
    const res = await this.attempt(id, () =>
      h.session.shareKeys({ roundId: this.ctx.roundId, advertisements }),
    );
    if (!res) return;
    h.view = this.viewOf(participants);
    h.shareKeys = res;
    // Bundles addressed to corrupt clients are opened at once: the adversary holds their keys.
    for (const b of res.bundles) {
      const c = this.corrupt.get(b.recipientId);
      if (!c) continue;
      const opened = await openBundle(
        { viewHash: h.view.hash, senderId: id, recipientId: c.id },
        b.nonce,
        b.ciphertext,
        this.adverts.get(id)!.cPublicKey,
        c.cKeys.secretKey,
      );
      this.knowledge.add('b', id, opened.selfMaskShare);
      this.knowledge.add('s', id, opened.secretKeyShare);
    }
  }

  /** Phase 2 for one honest client, shown this sharer list (and every bundle it can find). */
  async maskedInput(id: string, sharers: readonly string[]): Promise<void> {
    const h = this.honest.get(id)!;
    if (!h.view) return;
    const view = h.view;
    const sorted = [...sharers].sort();
    const bundles: IncomingBundle[] = [];
    for (const sender of view.graph.neighboursOf(id)) {
      if (!sorted.includes(sender)) continue;
      const c = this.corrupt.get(sender);
      if (c) {
        bundles.push(await c.bundleFor(view, id));
        continue;
      }
      const from = this.honest.get(sender)?.shareKeys?.bundles.find((b) => b.recipientId === id);
      if (from) bundles.push({ senderId: sender, nonce: from.nonce, ciphertext: from.ciphertext });
    }
    const res = await this.attempt(id, () =>
      h.session.maskedInput({ roundId: this.ctx.roundId, sharers: sorted, bundles }),
    );
    if (!res) return;
    h.sharers = sorted;
    h.maskedInput = res.maskedInput.slice();
    h.maskedInputSignature = res.signature;
  }

  /** Phase 3 for one honest client, shown this survivor list. */
  async consistencyCheck(id: string, survivors: readonly string[]): Promise<void> {
    const h = this.honest.get(id)!;
    if (!h.maskedInput) return;
    const sorted = [...survivors].sort();
    const res = await this.attempt(id, () =>
      h.session.consistencyCheck({ roundId: this.ctx.roundId, survivors: sorted }),
    );
    if (!res) return;
    h.survivors = sorted;
    h.consistencySignature = res.signature;
  }

  /**
   * Phase 4 for one honest client: the coordinator hands it every signature it has that is
   * valid for what this client was shown (honest ones where the lists match, corrupt ones
   * made to order), and keeps whatever shares come back.
   */
  async unmasking(id: string): Promise<UnmaskingResponse | undefined> {
    const h = this.honest.get(id)!;
    if (!h.consistencySignature || !h.view || !h.sharers || !h.survivors) return undefined;
    const view = h.view;
    const consistency = consistencyBytes(view.hash, h.sharers, h.survivors);
    const masked = maskedInputBytes(view.hash, h.sharers);
    const signatures: SurvivorSignature[] = [];
    const inputSignatures: SurvivorSignature[] = [];
    for (const s of h.survivors) {
      const c = this.corrupt.get(s);
      if (c) {
        signatures.push({ clientId: s, signature: c.sign(consistency) });
        if (s !== id && view.graph.areNeighbours(s, id)) {
          inputSignatures.push({ clientId: s, signature: c.sign(masked) });
        }
        continue;
      }
      const other = this.honest.get(s)!;
      if (
        other.consistencySignature &&
        other.view &&
        bytesEqual(other.view.hash, view.hash) &&
        sameList(other.sharers, h.sharers) &&
        sameList(other.survivors, h.survivors)
      ) {
        signatures.push({ clientId: s, signature: other.consistencySignature });
      }
      if (s !== id && other.maskedInputSignature && view.graph.areNeighbours(s, id)) {
        inputSignatures.push({ clientId: s, signature: other.maskedInputSignature });
      }
    }
    const alive = new Set(h.survivors);
    const res = await this.attempt(id, () =>
      h.session.unmasking({
        roundId: this.ctx.roundId,
        survivors: h.survivors!,
        dropped: h.sharers!.filter((s) => !alive.has(s)),
        signatures,
        inputSignatures,
      }),
    );
    if (!res) return undefined;
    for (const s of res.selfMaskShares) this.knowledge.add('b', s.ownerId, s.share);
    for (const s of res.secretKeyShares) this.knowledge.add('s', s.ownerId, s.share);
    return res;
  }

  /** The config the coordinator sent this honest client. */
  configOf(id: string): SecAggConfig {
    return this.options.configFor?.(id) ?? this.options.config;
  }

  /** The code an honest client refused with, if it did. */
  errorOf(id: string): unknown {
    return this.honest.get(id)!.error;
  }

  /**
   * The oracle: everything the coordinator received, plus its corrupt clients' secrets,
   * applied to `victim`'s masked input. Returns the update it decodes to, or null when some
   * mask cannot be removed.
   */
  async recover(victim: string): Promise<Float32Array | null> {
    const h = this.honest.get(victim)!;
    if (!h.maskedInput || !h.view || !h.sharers) return null;
    const view = h.view;
    const t = view.params.threshold;
    const selfMask = await this.knowledge.combine('b', victim, t);
    if (!selfMask) return null;
    const ownKey = await this.secretKeyOf(victim);
    const config = this.configOf(victim);
    // The wire carries the low modulusBits of each element; masks still come off mod 2^32.
    const x = new Uint32Array(config.vectorLength + MASKED_EXTRA_ELEMENTS);
    if (h.maskedInput.length !== x.length * packedElementBytes(config.modulusBits)) return null;
    addPackedInto(x, h.maskedInput, config.modulusBits);
    await addMask(x, selfMask, -1);
    for (const partner of view.graph.neighboursOf(victim)) {
      if (!h.sharers.includes(partner)) continue;
      const partnerKey = await this.secretKeyOf(partner);
      let seed: Uint8Array;
      if (partnerKey) {
        seed = await pairwiseSeed(
          this.ctx.roundId,
          partnerKey,
          this.adverts.get(victim)!.sPublicKey,
        );
      } else if (ownKey) {
        seed = await pairwiseSeed(this.ctx.roundId, ownKey, this.adverts.get(partner)!.sPublicKey);
      } else {
        return null;
      }
      await addMask(x, seed, pairwiseSign(victim, partner) === 1 ? -1 : 1);
    }
    const bits = config.modulusBits;
    const weight = toSignedBits(x[config.vectorLength]!, bits);
    if (weight < 1) return null;
    const out = new Float32Array(config.vectorLength);
    for (let i = 0; i < out.length; i++)
      out[i] = toSignedBits(x[i]!, bits) / (weight * config.scale);
    return out;
  }

  /** True when `recovered` is the victim's clipped update, to quantization precision. */
  matches(victim: string, recovered: Float32Array | null): boolean {
    if (!recovered) return false;
    const { input } = this.honest.get(victim)!;
    const config = this.configOf(victim);
    const w = Math.min(input.exampleCount, config.weightCap);
    const clip = config.clipRange;
    return recovered.every((v, i) => {
      const truth = Math.max(-clip, Math.min(clip, input.update[i]!));
      return Math.abs(v - truth) <= 1.5 / (w * config.scale) + 1e-6;
    });
  }

  private async secretKeyOf(id: string): Promise<Uint8Array | null> {
    const c = this.corrupt.get(id);
    if (c) return c.sKeys.secretKey;
    const h = this.honest.get(id);
    if (!h?.view) return null;
    const key = await this.knowledge.combine('s', id, h.view.params.threshold);
    if (!key) return null;
    const pub = await x25519PublicKey(key);
    return bytesEqual(pub, this.adverts.get(id)!.sPublicKey) ? key : null;
  }
}

function sameList(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}
