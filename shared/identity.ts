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

/**
 * An identity that signs without showing its secret key: a browser tab's non-extractable
 * WebCrypto Ed25519 key (client-browser/identity-store.ts) is one. Everything a client signs
 * goes through `signMessage`, which takes either form, so the protocol never needs the key.
 */
export interface ExternalSigner {
  readonly publicKey: Uint8Array;
  /** A detached Ed25519 signature of `message`. */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** What a client signs with: a key pair it holds, or a signer that keeps the key to itself. */
export type SigningIdentity = IdentityKeyPair | ExternalSigner;

/** True when the identity signs through its own `sign` (its secret key is not available). */
export function isExternalSigner(identity: SigningIdentity): identity is ExternalSigner {
  return 'sign' in identity && typeof identity.sign === 'function';
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
