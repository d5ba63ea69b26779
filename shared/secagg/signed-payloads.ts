import nacl from 'tweetnacl';
import { CohortError } from '../errors';
import { SECAGG_DOMAIN, decodeFields, encodeFields, hash32 } from './encoding';
import type { EncodedField } from './encoding';
import { boxSharedKey, x25519 } from './crypto-primitives';
import { SHARE_LENGTH } from './shamir';
import { bytesEqual } from './encoding';

/**
 * The exact bytes that get signed, sealed or hashed in the protocol, in one place so the
 * client and the coordinator cannot drift apart. Advertisements bind the whole round context
 * (coordinator, experiment, round, model, config); everything after them binds the round
 * view, the hash of the full signed advertisement list, so nothing produced for one round,
 * experiment, coordinator or participant set verifies in another.
 */

/** Context every advertisement of a round binds. */
export interface RoundContext {
  /** Id of the coordinator (hash of its key) the client registered with. */
  coordinatorId: string;
  /** Experiment name, as announced at registration. */
  experiment: string;
  roundId: string;
  modelHash: string;
  configHash: string;
}

/** Bytes a client signs when advertising its per-round keys. */
export function advertisementBytes(
  ctx: RoundContext,
  clientId: string,
  cPublicKey: Uint8Array,
  sPublicKey: Uint8Array,
): Uint8Array {
  return encodeFields(SECAGG_DOMAIN.advertiseKeys, [
    ctx.coordinatorId,
    ctx.experiment,
    ctx.roundId,
    ctx.modelHash,
    ctx.configHash,
    clientId,
    cPublicKey,
    sPublicKey,
  ]);
}

/**
 * Bytes a client signs with its masked input: the key sharers it was shown, hence exactly the
 * neighbours it masked with. Holders check it before revealing its self-mask share, so the
 * coordinator cannot show a victim a small sharer set and kill all of it elsewhere.
 */
export function maskedInputBytes(viewHash: Uint8Array, sharers: readonly string[]): Uint8Array {
  return encodeFields(SECAGG_DOMAIN.maskedInput, [viewHash, sharers.join(',')]);
}

/** Bytes a survivor signs in the consistency check: the sharer and survivor lists it was shown. */
export function consistencyBytes(
  viewHash: Uint8Array,
  sharers: readonly string[],
  survivors: readonly string[],
): Uint8Array {
  return encodeFields(SECAGG_DOMAIN.consistency, [
    viewHash,
    sharers.join(','),
    survivors.join(','),
  ]);
}

/** Plaintext of a share bundle from `senderId` to `recipientId`. */
export interface ShareBundle {
  /** The round view the sender shared under; a recipient shown another view refuses it. */
  viewHash: Uint8Array;
  senderId: string;
  recipientId: string;
  selfMaskShare: Uint8Array;
  secretKeyShare: Uint8Array;
}

/**
 * Seals a bundle to its recipient with nacl.box (X25519 + XSalsa20-Poly1305) under a fresh
 * random nonce. The box key is symmetric between the two c-keys, so the names inside the
 * plaintext are what stop the coordinator from reflecting a bundle back to its sender.
 */
export async function sealBundle(
  bundle: ShareBundle,
  recipientCPublicKey: Uint8Array,
  senderCSecretKey: Uint8Array,
): Promise<{ nonce: Uint8Array; ciphertext: Uint8Array }> {
  const plaintext = encodeFields(SECAGG_DOMAIN.shareBundle, [
    bundle.viewHash,
    bundle.senderId,
    bundle.recipientId,
    bundle.selfMaskShare,
    bundle.secretKeyShare,
  ]);
  const nonce = nacl.randomBytes(nacl.box.nonceLength);
  const key = await boxSharedKey(senderCSecretKey, recipientCPublicKey);
  const ciphertext = nacl.secretbox(plaintext, nonce, key); // = nacl.box with the same keys
  plaintext.fill(0);
  key.fill(0);
  return { nonce, ciphertext };
}

/**
 * Opens a bundle and checks it is the one expected (view, sender, recipient, share sizes).
 * Any failure, forged or tampered ciphertext included, is SECAGG_DECRYPT; a bundle sealed
 * under another round view is SECAGG_INCONSISTENT (the coordinator split the participants).
 */
export async function openBundle(
  expected: { viewHash: Uint8Array; senderId: string; recipientId: string },
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  senderCPublicKey: Uint8Array,
  recipientCSecretKey: Uint8Array,
): Promise<ShareBundle> {
  const key = await boxSharedKey(recipientCSecretKey, senderCPublicKey);
  const plaintext = nacl.secretbox.open(ciphertext, nonce, key); // = nacl.box.open
  key.fill(0);
  if (!plaintext) {
    throw new CohortError(
      'SECAGG_DECRYPT',
      `bundle from ${expected.senderId} does not authenticate`,
    );
  }
  let fields: EncodedField[] | undefined;
  try {
    fields = decodeFields(plaintext, SECAGG_DOMAIN.shareBundle, [
      'bytes',
      'text',
      'text',
      'bytes',
      'bytes',
    ]);
  } catch {
    // Malformed: `fields` stays undefined and is refused below, once the plaintext is wiped.
  }
  // The decoded fields are copies: the plaintext itself is wiped.
  plaintext.fill(0);
  if (!fields) {
    throw new CohortError('SECAGG_DECRYPT', `bundle from ${expected.senderId} is malformed`);
  }
  const [viewHash, senderId, recipientId, selfMaskShare, secretKeyShare] = fields as [
    Uint8Array,
    string,
    string,
    Uint8Array,
    Uint8Array,
  ];
  if (
    senderId !== expected.senderId ||
    recipientId !== expected.recipientId ||
    selfMaskShare.length !== SHARE_LENGTH ||
    secretKeyShare.length !== SHARE_LENGTH
  ) {
    throw new CohortError(
      'SECAGG_DECRYPT',
      `bundle from ${expected.senderId} names the wrong sender or recipient`,
    );
  }
  if (!bytesEqual(viewHash, expected.viewHash)) {
    throw new CohortError(
      'SECAGG_INCONSISTENT',
      `bundle from ${expected.senderId} was sealed under another participant list`,
    );
  }
  return { viewHash, senderId, recipientId, selfMaskShare, secretKeyShare };
}

/**
 * Seed of the pairwise mask between two clients, from their X25519 shared secret (computed by
 * either of them, or by the coordinator after rebuilding a dropped client's secret key).
 * A low-order peer key (all-zero shared secret) is not refused: only a signer of such a key
 * can cause it, and that signer knows the pairwise mask anyway, so refusing would only hand
 * one malicious participant a way to abort the round.
 */
export async function pairwiseSeed(
  roundId: string,
  mySecretKey: Uint8Array,
  theirPublicKey: Uint8Array,
): Promise<Uint8Array> {
  const shared = await x25519(mySecretKey, theirPublicKey);
  const seed = hash32(SECAGG_DOMAIN.pairwiseSeed, [roundId, shared]);
  shared.fill(0);
  return seed;
}

/**
 * Sign of client `me`'s pairwise mask with `other`: +1 if me sorts first, else -1, so the two
 * masks cancel in the sum.
 */
export function pairwiseSign(me: string, other: string): 1 | -1 {
  return me < other ? 1 : -1;
}
