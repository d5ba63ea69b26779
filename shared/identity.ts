import nacl from 'tweetnacl';
import { CohortError } from './errors';
import { toHex } from './bytes';

/**
 * A participant's long-term Ed25519 identity. The coordinator never trusts a client-chosen
 * id: the id is derived from the public key, and registration proves possession of the
 * secret key by signing a fresh server challenge.
 */
export interface IdentityKeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/** A new random identity from the platform's CSPRNG (tweetnacl uses crypto.getRandomValues). */
export function generateIdentity(): IdentityKeyPair {
  const pair = nacl.sign.keyPair();
  return { publicKey: pair.publicKey, secretKey: pair.secretKey };
}

/** Rebuilds an identity from its 64-byte secret key, checking it is well formed. */
export function identityFromSecretKey(secretKey: Uint8Array): IdentityKeyPair {
  if (secretKey.length !== nacl.sign.secretKeyLength) {
    throw new CohortError(
      'AUTH_FAILED',
      `identity secret key must be ${nacl.sign.secretKeyLength} bytes`,
    );
  }
  const pair = nacl.sign.keyPair.fromSecretKey(secretKey);
  return { publicKey: pair.publicKey, secretKey: pair.secretKey };
}

/**
 * The stable client id: 32 hex characters of SHA-512(publicKey). Short enough for logs and
 * database keys, long enough (128 bits) that nobody can grind a collision.
 */
export function clientIdFromPublicKey(publicKey: Uint8Array): string {
  if (publicKey.length !== nacl.sign.publicKeyLength) {
    throw new CohortError('AUTH_FAILED', `public key must be ${nacl.sign.publicKeyLength} bytes`);
  }
  return toHex(nacl.hash(publicKey).subarray(0, 16));
}

/** Detached Ed25519 signature. */
export function signDetached(message: Uint8Array, identity: IdentityKeyPair): Uint8Array {
  return nacl.sign.detached(message, identity.secretKey);
}

/** Verifies a detached Ed25519 signature; false (never throws) on malformed input. */
export function verifyDetached(
  message: Uint8Array,
  signature: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  if (signature.length !== nacl.sign.signatureLength) return false;
  if (publicKey.length !== nacl.sign.publicKeyLength) return false;
  return nacl.sign.detached.verify(message, signature, publicKey);
}
