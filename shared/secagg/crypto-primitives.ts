import nacl from 'tweetnacl';
import type { SigningIdentity } from '../identity';
import { isExternalSigner, signDetached, verifyDetached } from '../identity';
import { bytesEqual } from './encoding';

/**
 * Ed25519 signatures and X25519 key agreement, through WebCrypto when the platform has them
 * (Node >= 20; Chrome 133+/137+, Firefox 129+, Safari 17+) and tweetnacl otherwise. Results are
 * bit-identical (RFC 8032 signing is deterministic, RFC 7748 is a function; a self-test
 * compares both before the native path is used), so native and tweetnacl parties
 * interoperate. Why: a round costs every party O(n) signature checks and every client O(k)
 * key agreements; tweetnacl needs ~8 ms per Ed25519 check and ~2 ms per X25519 in Node, and
 * 15-30x more inside vm sandboxes such as jest (its inner loops read globals like Math),
 * while native calls take microseconds. Sealing stays nacl.box (XSalsa20-Poly1305 under
 * HSalsa20 of the X25519 secret), byte for byte.
 */

/** Which implementation to use: detect (default), or force tweetnacl (tests run both). */
export type CryptoBackend = 'auto' | 'tweetnacl';

interface Capabilities {
  ed25519: boolean;
  x25519: boolean;
}

const NONE: Capabilities = { ed25519: false, x25519: false };
let detection: Promise<Capabilities> | undefined;
let forced: CryptoBackend = 'auto';

/**
 * Forces tweetnacl, or returns to detection. Process-wide on purpose: parties of one process
 * must not disagree; meant for tests and for platforms whose native crypto misbehaves.
 */
export function setSecAggCryptoBackend(backend: CryptoBackend): void {
  forced = backend;
}

// PKCS#8 wrappers of raw 32-byte private keys (RFC 8410): WebCrypto imports private OKP keys
// only as PKCS#8 or JWK.
const X25519_PKCS8_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);
const ED25519_PKCS8_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);
/** The X25519 base point u = 9: X25519(sk, 9) is the public key of sk. */
const X25519_BASE_POINT = new Uint8Array(32);
X25519_BASE_POINT[0] = 9;
/** "expand 32-byte k", the Salsa20 constant HSalsa20 uses in nacl.box.before. */
const SIGMA = new Uint8Array([
  101, 120, 112, 97, 110, 100, 32, 51, 50, 45, 98, 121, 116, 101, 32, 107,
]);

function subtle(): SubtleCrypto | undefined {
  return globalThis.crypto?.subtle;
}

function copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

function pkcs8(prefix: Uint8Array, rawKey: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(prefix.length + 32);
  out.set(prefix);
  out.set(rawKey.subarray(0, 32), prefix.length);
  return out;
}

/**
 * Imported CryptoKeys by the key array they came from. A round uses each key many times
 * (a client's c and s secrets with every neighbour), and importing, above all a PKCS#8
 * private key, costs far more than the operation itself. Keyed by array identity: callers
 * pass the same, never-mutated arrays and drop them with {@link forgetCachedKeys}.
 */
const keyCache = new WeakMap<Uint8Array, Map<string, Promise<CryptoKey>>>();

function cachedImport(
  bytes: Uint8Array,
  kind: string,
  load: () => Promise<CryptoKey>,
): Promise<CryptoKey> {
  let byKind = keyCache.get(bytes);
  if (!byKind) {
    byKind = new Map();
    keyCache.set(bytes, byKind);
  }
  let key = byKind.get(kind);
  if (!key) {
    key = load();
    byKind.set(kind, key);
    key.catch(() => byKind.delete(kind)); // a failed import is not remembered
  }
  return key;
}

/** Drops the imported keys of these arrays (call before wiping secret keys). */
export function forgetCachedKeys(...arrays: (Uint8Array | undefined)[]): void {
  for (const a of arrays) if (a) keyCache.delete(a);
}

function importEd25519Public(publicKey: Uint8Array): Promise<CryptoKey> {
  // Stryker disable next-line StringLiteral: a cache key only; '' still differs from the other two kinds, so no entries collide.
  return cachedImport(publicKey, 'ed25519-public', () =>
    subtle()!.importKey('raw', copy(publicKey), { name: 'Ed25519' }, false, ['verify']),
  );
}

function importX25519Public(publicKey: Uint8Array): Promise<CryptoKey> {
  // Stryker disable next-line StringLiteral: a cache key only; '' still differs from the other two kinds, so no entries collide.
  return cachedImport(publicKey, 'x25519-public', () =>
    subtle()!.importKey('raw', copy(publicKey), { name: 'X25519' }, false, []),
  );
}

function importX25519Private(secretKey: Uint8Array): Promise<CryptoKey> {
  // Stryker disable next-line StringLiteral: a cache key only; '' still differs from the other two kinds, so no entries collide.
  return cachedImport(secretKey, 'x25519-private', async () => {
    const der = pkcs8(X25519_PKCS8_PREFIX, secretKey);
    try {
      return await subtle()!.importKey('pkcs8', der, { name: 'X25519' }, false, ['deriveBits']);
    } finally {
      der.fill(0);
    }
  });
}

async function nativeVerify(
  message: Uint8Array,
  signature: Uint8Array,
  publicKey: Uint8Array,
): Promise<boolean> {
  const key = await importEd25519Public(publicKey);
  return subtle()!.verify({ name: 'Ed25519' }, key, copy(signature), copy(message));
}

async function nativeSign(message: Uint8Array, identitySecretKey: Uint8Array): Promise<Uint8Array> {
  const s = subtle()!;
  const der = pkcs8(ED25519_PKCS8_PREFIX, identitySecretKey); // tweetnacl: seed || public key
  try {
    const key = await s.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']);
    return new Uint8Array(await s.sign({ name: 'Ed25519' }, key, copy(message)));
  } finally {
    der.fill(0);
  }
}

async function nativeX25519(secretKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array> {
  const [priv, pub] = await Promise.all([
    importX25519Private(secretKey),
    importX25519Public(publicKey),
  ]);
  return new Uint8Array(await subtle()!.deriveBits({ name: 'X25519', public: pub }, priv, 256));
}

async function probe(): Promise<Capabilities> {
  const caps: Capabilities = { ed25519: false, x25519: false };
  if (!subtle()) return caps;
  // Stryker disable BlockStatement: an empty catch is equivalent (the assignment is the try block's last step, so on a throw the capability is still false).
  try {
    const signer = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(7));
    // Stryker disable next-line ArrayDeclaration: the self-test's verdicts are the same for any message, the empty one included.
    const message = new Uint8Array([1, 2, 3]);
    const signature = nacl.sign.detached(message, signer.secretKey);
    const forged = signature.slice();
    forged[0] = forged[0]! ^ 1;
    caps.ed25519 =
      (await nativeVerify(message, signature, signer.publicKey)) &&
      !(await nativeVerify(message, forged, signer.publicKey)) &&
      bytesEqual(await nativeSign(message, signer.secretKey), signature);
  } catch {
    caps.ed25519 = false;
  }
  // Stryker restore BlockStatement
  // Stryker disable BlockStatement: as above, for X25519.
  try {
    const a = nacl.box.keyPair.fromSecretKey(new Uint8Array(32).fill(9));
    const b = nacl.box.keyPair.fromSecretKey(new Uint8Array(32).fill(11));
    const shared = await nativeX25519(a.secretKey, b.publicKey);
    const publicKey = await nativeX25519(a.secretKey, X25519_BASE_POINT);
    caps.x25519 =
      bytesEqual(shared, nacl.scalarMult(a.secretKey, b.publicKey)) &&
      bytesEqual(publicKey, a.publicKey);
  } catch {
    caps.x25519 = false;
  }
  // Stryker restore BlockStatement
  return caps;
}

async function capabilities(): Promise<Capabilities> {
  if (forced === 'tweetnacl') return NONE;
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

/**
 * Ed25519 detached signature by an identity: an external signer signs itself (a browser's
 * non-extractable key); a tweetnacl-format key pair (64-byte secret key = seed || public key)
 * signs through WebCrypto where it has Ed25519, else tweetnacl. Ed25519 signing is
 * deterministic, so every path gives the same bytes.
 */
export async function signMessage(
  message: Uint8Array,
  identity: SigningIdentity,
): Promise<Uint8Array> {
  if (isExternalSigner(identity)) return identity.sign(message);
  if ((await capabilities()).ed25519) return nativeSign(message, identity.secretKey);
  return signDetached(message, identity);
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
 * Raw X25519 shared secret (RFC 7748). A low-order peer key yields all zeros, as in tweetnacl
 * (WebCrypto refuses it; we mirror tweetnacl so both backends agree).
 */
export async function x25519(secretKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array> {
  if ((await capabilities()).x25519) {
    // Stryker disable BlockStatement: an empty catch falls through to the same nacl.scalarMult return below.
    try {
      return await nativeX25519(secretKey, publicKey);
    } catch {
      return nacl.scalarMult(secretKey, publicKey);
    }
    // Stryker restore BlockStatement
  }
  return nacl.scalarMult(secretKey, publicKey);
}

/** The X25519 public key of a secret key (= nacl.scalarMult.base). */
export async function x25519PublicKey(secretKey: Uint8Array): Promise<Uint8Array> {
  // Stryker disable next-line ConditionalExpression: equivalent either way: without WebCrypto, x25519(sk, base point) takes the tweetnacl path, and scalarMult(sk, 9) is scalarMult.base(sk).
  if ((await capabilities()).x25519) return x25519(secretKey, X25519_BASE_POINT);
  return nacl.scalarMult.base(secretKey);
}

/** A fresh X25519 key pair from the platform CSPRNG (same format as nacl.box.keyPair). */
export async function generateBoxKeyPair(): Promise<nacl.BoxKeyPair> {
  const secretKey = nacl.randomBytes(32);
  return { publicKey: await x25519PublicKey(secretKey), secretKey };
}

interface NaclLowLevel {
  crypto_core_hsalsa20(
    out: Uint8Array,
    input: Uint8Array,
    key: Uint8Array,
    constant: Uint8Array,
  ): number;
}

/**
 * The key nacl.box uses between two X25519 pairs (= nacl.box.before: HSalsa20 of the shared
 * secret), so `nacl.secretbox` under it is exactly `nacl.box`.
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
