import nacl from 'tweetnacl';
import { CohortError } from '../errors';
import { SECAGG_DOMAIN, decodeFields, encodeFields, hash32 } from './encoding';
import { boxSharedKey, x25519 } from './crypto-primitives';
import { SHARE_LENGTH } from './shamir';

/**
 * The exact bytes that get signed, sealed or hashed in the protocol, in one place so the
 * client and the coordinator cannot drift apart. Each binds the round id, and the signed ones
 * the model hash and config hash too, so nothing can be replayed across rounds, models or
 * parameter sets.
 */

/** Context every signature of a round binds. */
export interface RoundContext {
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
    ctx.roundId,
    ctx.modelHash,
    ctx.configHash,
    clientId,
    cPublicKey,
    sPublicKey,
  ]);
}

/** Bytes a survivor signs in the consistency check: the survivor list it was shown. */
export function consistencyBytes(ctx: RoundContext, survivors: readonly string[]): Uint8Array {
  return encodeFields(SECAGG_DOMAIN.consistency, [
    ctx.roundId,
    ctx.modelHash,
    ctx.configHash,
    survivors.join(','),
  ]);
}

/** Plaintext of a share bundle from `senderId` to `recipientId`. */
export interface ShareBundle {
  roundId: string;
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
    bundle.roundId,
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
 * Opens a bundle and checks it is the one expected (round, sender, recipient, share sizes).
 * Any failure, forged or tampered ciphertext included, is SECAGG_DECRYPT.
 */
export async function openBundle(
  expected: { roundId: string; senderId: string; recipientId: string },
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
  let fields;
  try {
    fields = decodeFields(plaintext, SECAGG_DOMAIN.shareBundle, [
      'text',
      'text',
      'text',
      'bytes',
      'bytes',
    ]);
  } catch {
    throw new CohortError('SECAGG_DECRYPT', `bundle from ${expected.senderId} is malformed`);
  } finally {
    plaintext.fill(0);
  }
  const [roundId, senderId, recipientId, selfMaskShare, secretKeyShare] = fields as [
    string,
    string,
    string,
    Uint8Array,
    Uint8Array,
  ];
  if (
    roundId !== expected.roundId ||
    senderId !== expected.senderId ||
    recipientId !== expected.recipientId ||
    selfMaskShare.length !== SHARE_LENGTH ||
    secretKeyShare.length !== SHARE_LENGTH
  ) {
    throw new CohortError(
      'SECAGG_DECRYPT',
      `bundle from ${expected.senderId} names the wrong round, sender or recipient`,
    );
  }
  return { roundId, senderId, recipientId, selfMaskShare, secretKeyShare };
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
