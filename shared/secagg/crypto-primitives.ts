import nacl from 'tweetnacl';
import { verifyDetached } from '../identity';
import { bytesEqual } from './encoding';

/**
 * Ed25519 verification and X25519 key agreement, through WebCrypto when the platform has them
 * (Node >= 20, Chrome 137+/133+, Firefox 129+, Safari 17+) and tweetnacl otherwise. Results are
 * bit-identical (RFC 8032 / RFC 7748; checked by a self-test before the native path is used),
 * so native and tweetnacl parties interoperate. Why: a round makes O(n) signature checks per
 * party and O(k) key agreements per client; tweetnacl's Ed25519 verify costs ~8 ms and X25519
 * ~2 ms in Node, and 15-30x more inside vm sandboxes such as jest (tweetnacl reads globals like
 * Math in its inner loops), while native calls cost microseconds. Sealing stays nacl.box
 * (XSalsa20-Poly1305 after HSalsa20 of the X25519 secret), byte for byte.
 */

/** Which implementation to use: detect (default), or force one (tests exercise both). */
export type CryptoBackend = 'auto' | 'webcrypto' | 'tweetnacl';

interface Capabilities {
  ed25519: boolean;
  x25519: boolean;
}

let detection: Promise<Capabilities> | undefined;
let forced: CryptoBackend = 'auto';

/**
 * Forces a backend for both primitives; 'webcrypto' still falls back where the platform lacks
 * it. Process-wide on purpose: parties of one process must not disagree.
 */
export function setSecAggCryptoBackend(backend: CryptoBackend): void {
  forced = backend;
}

// PKCS#8 wrappers of a raw 32-byte private key (RFC 8410): WebCrypto imports private OKP keys
// only as PKCS#8 or JWK.
const X25519_PKCS8_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);

function subtle(): SubtleCrypto | undefined {
  return globalThis.crypto?.subtle;
}

function copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

async function nativeVerify(
  message: Uint8Array,
  signature: Uint8Array,
  publicKey: Uint8Array,
): Promise<boolean> {
  const s = subtle()!;
  const key = await s.importKey('raw', copy(publicKey), { name: 'Ed25519' }, false, ['verify']);
  return s.verify({ name: 'Ed25519' }, key, copy(signature), copy(message));
}

async function nativeX25519(secretKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array> {
  const s = subtle()!;
  const pkcs8 = new Uint8Array(X25519_PKCS8_PREFIX.length + 32);
  pkcs8.set(X25519_PKCS8_PREFIX);
  pkcs8.set(secretKey, X25519_PKCS8_PREFIX.length);
  try {
    const priv = await s.importKey('pkcs8', pkcs8, { name: 'X25519' }, false, ['deriveBits']);
    const pub = await s.importKey('raw', copy(publicKey), { name: 'X25519' }, false, []);
    return new Uint8Array(await s.deriveBits({ name: 'X25519', public: pub }, priv, 256));
  } finally {
    pkcs8.fill(0);
  }
}

async function probe(): Promise<Capabilities> {
  const caps: Capabilities = { ed25519: false, x25519: false };
  if (!subtle()) return caps;
  try {
    const signer = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
    const message = new Uint8Array([1, 2, 3]);
    const signature = nacl.sign.detached(message, signer.secretKey);
    const forged = signature.slice();
    forged[0] = forged[0]! ^ 1;
    caps.ed25519 =
      (await nativeVerify(message, signature, signer.publicKey)) &&
      !(await nativeVerify(message, forged, signer.publicKey));
  } catch {
    caps.ed25519 = false;
  }
  try {
    const a = nacl.box.keyPair.fromSecretKey(new Uint8Array(32).fill(9));
    const b = nacl.box.keyPair.fromSecretKey(new Uint8Array(32).fill(11));
    caps.x25519 = bytesEqual(
      await nativeX25519(a.secretKey, b.publicKey),
      nacl.scalarMult(a.secretKey, b.publicKey),
    );
  } catch {
    caps.x25519 = false;
  }
  return caps;
}

async function capabilities(): Promise<Capabilities> {
  if (forced === 'tweetnacl') return { ed25519: false, x25519: false };
  detection ??= probe();
  return detection;
}

/** Which backend each primitive uses now (for logs and tests). */
export async function secAggCryptoBackends(): Promise<{ ed25519: string; x25519: string }> {
  const caps = await capabilities();
  return {
    ed25519: caps.ed25519 ? 'webcrypto' : 'tweetnacl',
    x25519: caps.x25519 ? 'webcrypto' : 'tweetnacl',
  };
}

/** Ed25519 detached-signature check; false (never throws) on malformed or invalid input. */
export async function verifySignature(
  message: Uint8Array,
  signature: Uint8Array,
  publicKey: Uint8Array,
): Promise<boolean> {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  if ((await capabilities()).ed25519) {
    try {
      return await nativeVerify(message, signature, publicKey);
    } catch {
      return false; // e.g. a public key that is not a valid point
    }
  }
  return verifyDetached(message, signature, publicKey);
}

/**
 * Raw X25519 shared secret (RFC 7748). A low-order peer key yields all zeros, as in
 * tweetnacl (WebCrypto refuses it; we mirror tweetnacl so both backends agree).
 */
export async function x25519(secretKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array> {
  if ((await capabilities()).x25519) {
    try {
      return await nativeX25519(secretKey, publicKey);
    } catch {
      return nacl.scalarMult(secretKey, publicKey);
    }
  }
  return nacl.scalarMult(secretKey, publicKey);
}

interface NaclLowLevel {
  crypto_core_hsalsa20(
    out: Uint8Array,
    input: Uint8Array,
    key: Uint8Array,
    constant: Uint8Array,
  ): number;
}

const SIGMA = new Uint8Array([
  101, 120, 112, 97, 110, 100, 32, 51, 50, 45, 98, 121, 116, 101, 32, 107,
]);

/**
 * The key nacl.box uses between two X25519 pairs (= nacl.box.before: HSalsa20 of the shared
 * secret), so `nacl.secretbox` with it is exactly `nacl.box`.
 */
export async function boxSharedKey(
  secretKey: Uint8Array,
  publicKey: Uint8Array,
): Promise<Uint8Array> {
  const lowlevel = (nacl as unknown as { lowlevel?: Partial<NaclLowLevel> }).lowlevel;
  const caps = await capabilities();
  if (!caps.x25519 || typeof lowlevel?.crypto_core_hsalsa20 !== 'function') {
    return nacl.box.before(publicKey, secretKey);
  }
  const shared = await x25519(secretKey, publicKey);
  const key = new Uint8Array(32);
  lowlevel.crypto_core_hsalsa20(key, new Uint8Array(16), shared, SIGMA);
  shared.fill(0);
  return key;
}
