import { createPrivateKey, createPublicKey, diffieHellman, sign as nodeSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import type { IdentityKeyPair } from '../../shared/identity';
import type * as PrimitivesModule from '../../shared/secagg/crypto-primitives';

type Primitives = typeof PrimitivesModule;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

// RFC 8032, section 7.1, TEST 1 (Ed25519, empty message).
const RFC8032_SEED = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
const RFC8032_PUBLIC = fromHex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
const RFC8032_SIGNATURE =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065' +
  '224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';
// RFC 7748, section 6.1 (X25519 Diffie-Hellman, Alice and Bob).
const ALICE_SECRET = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
const ALICE_PUBLIC = fromHex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
const BOB_SECRET = fromHex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
const BOB_PUBLIC = fromHex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
const BASE_POINT = new Uint8Array(32);
BASE_POINT[0] = 9;

/** An RFC 8032 identity in tweetnacl's format (64-byte secret key = seed || public key). */
const RFC8032_IDENTITY: IdentityKeyPair = {
  publicKey: RFC8032_PUBLIC,
  secretKey: new Uint8Array([...RFC8032_SEED, ...RFC8032_PUBLIC]),
};

/** node:crypto's own key object for an OKP private key given as JWK (no PKCS#8 built here). */
function nodePrivateKey(crv: 'Ed25519' | 'X25519', d: Uint8Array, x: Uint8Array): KeyObject {
  return createPrivateKey({
    key: { kty: 'OKP', crv, d: b64url(d), x: b64url(x) },
    format: 'jwk',
  });
}

function nodePublicKey(crv: 'Ed25519' | 'X25519', x: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv, x: b64url(x) }, format: 'jwk' });
}

/** The RFC 8410 PKCS#8 DER of a raw private key, as node:crypto writes it. */
function nodePkcs8(crv: 'Ed25519' | 'X25519', d: Uint8Array, x: Uint8Array): string {
  return hex(nodePrivateKey(crv, d, x).export({ format: 'der', type: 'pkcs8' }));
}

/** What the module handed to importKey. */
interface ImportRecord {
  format: string;
  algorithm: string;
  /** The very array passed (a PKCS#8 buffer must be wiped once imported). */
  passed: Uint8Array;
  /** Its contents at the time of the call. */
  bytes: Uint8Array;
  extractable: boolean;
  usages: readonly string[];
}

/** Replacements a test installs; a hook that returns undefined lets the real call through. */
interface Misbehaviour {
  importKey?: (record: ImportRecord) => Promise<CryptoKey> | undefined;
  verify?: (signature: Uint8Array, realVerdict: boolean) => boolean;
  sign?: (realSignature: Uint8Array) => Uint8Array;
  deriveBits?: (peerPublicKey: Uint8Array | undefined, realBits: Uint8Array) => Uint8Array;
}

/**
 * A WebCrypto stand-in: forwards to Node's SubtleCrypto, counts and records what it is asked,
 * and lets a test make it misbehave the way a broken platform could.
 */
class RecordingSubtle {
  readonly imports: ImportRecord[] = [];
  readonly calls = { importKey: 0, sign: 0, verify: 0, deriveBits: 0 };
  misbehave: Misbehaviour = {};
  private readonly rawOf = new WeakMap<CryptoKey, Uint8Array>();

  constructor(private readonly real: SubtleCrypto) {}

  resetCounts(): void {
    this.calls.importKey = this.calls.sign = this.calls.verify = this.calls.deriveBits = 0;
    this.imports.length = 0;
  }

  async importKey(
    format: 'raw' | 'pkcs8',
    keyData: Uint8Array<ArrayBuffer>,
    algorithm: { name: string },
    extractable: boolean,
    usages: KeyUsage[],
  ): Promise<CryptoKey> {
    this.calls.importKey++;
    const record: ImportRecord = {
      format,
      algorithm: algorithm.name,
      passed: keyData,
      bytes: keyData.slice(),
      extractable,
      usages: [...usages],
    };
    this.imports.push(record);
    const replaced = this.misbehave.importKey?.(record);
    if (replaced) return replaced;
    const key = await this.real.importKey(format, keyData, algorithm, extractable, usages);
    if (format === 'raw') this.rawOf.set(key, record.bytes);
    return key;
  }

  async verify(
    algorithm: { name: string },
    key: CryptoKey,
    signature: Uint8Array<ArrayBuffer>,
    data: Uint8Array<ArrayBuffer>,
  ): Promise<boolean> {
    this.calls.verify++;
    const verdict = await this.real.verify(algorithm, key, signature, data);
    return this.misbehave.verify ? this.misbehave.verify(signature, verdict) : verdict;
  }

  async sign(
    algorithm: { name: string },
    key: CryptoKey,
    data: Uint8Array<ArrayBuffer>,
  ): Promise<ArrayBuffer> {
    this.calls.sign++;
    const signature = new Uint8Array(await this.real.sign(algorithm, key, data));
    const out = this.misbehave.sign ? this.misbehave.sign(signature) : signature;
    return out.slice().buffer;
  }

  async deriveBits(
    algorithm: { name: string; public: CryptoKey },
    baseKey: CryptoKey,
    length: number,
  ): Promise<ArrayBuffer> {
    this.calls.deriveBits++;
    const bits = new Uint8Array(await this.real.deriveBits(algorithm, baseKey, length));
    const peer = this.rawOf.get(algorithm.public);
    const out = this.misbehave.deriveBits ? this.misbehave.deriveBits(peer, bits) : bits;
    return out.slice().buffer;
  }
}

const realCrypto = globalThis.crypto;

function setGlobalCrypto(value: Crypto | undefined): void {
  Object.defineProperty(globalThis, 'crypto', {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

/** Puts a recording stand-in in place of globalThis.crypto.subtle. */
function installRecordingSubtle(): RecordingSubtle {
  const subtle = new RecordingSubtle(realCrypto.subtle);
  setGlobalCrypto({ subtle: subtle as unknown as SubtleCrypto } as unknown as Crypto);
  return subtle;
}

/**
 * A fresh copy of the module: backend detection runs once per module instance, so every test
 * gets its own detection, run against whatever globalThis.crypto the test installed.
 */
function freshPrimitives(): Primitives {
  jest.resetModules();
  return jest.requireActual<Primitives>('../../shared/secagg/crypto-primitives');
}

const flipFirstByte = (bytes: Uint8Array): Uint8Array => {
  const out = bytes.slice();
  out[0] = out[0]! ^ 1;
  return out;
};

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array): boolean =>
  a !== undefined && hex(a) === hex(b);

afterEach(() => {
  setGlobalCrypto(realCrypto);
  jest.restoreAllMocks();
});

/**
 * Backend selection of shared/secagg/crypto-primitives.ts, which the agreement tests in
 * crypto-primitives.test.ts cannot see (both backends give the same bytes): that WebCrypto
 * is used when it passes the self-test and never when it fails it, is absent, or is switched
 * off; that imported keys are cached, forgotten, non-extractable, and their PKCS#8 copies
 * wiped; and that malformed or refused input verifies as false. WebCrypto is replaced by a
 * recording stand-in that forwards to Node's; expected bytes come from RFC 8032 / RFC 7748
 * vectors and node:crypto, never from the module.
 */
describe('crypto-primitives backend selection and key handling', () => {
  it('the independent vectors agree with node:crypto', () => {
    const rfcSignature = nodeSign(
      null,
      new Uint8Array(0),
      nodePrivateKey('Ed25519', RFC8032_SEED, RFC8032_PUBLIC),
    );
    expect(hex(rfcSignature)).toBe(RFC8032_SIGNATURE);
    const shared = diffieHellman({
      privateKey: nodePrivateKey('X25519', ALICE_SECRET, ALICE_PUBLIC),
      publicKey: nodePublicKey('X25519', BOB_PUBLIC),
    });
    const sharedBack = diffieHellman({
      privateKey: nodePrivateKey('X25519', BOB_SECRET, BOB_PUBLIC),
      publicKey: nodePublicKey('X25519', ALICE_PUBLIC),
    });
    expect(hex(shared)).toBe(hex(sharedBack));
  });

  it('without WebCrypto: tweetnacl everywhere, no self-test, correct results', async () => {
    setGlobalCrypto(undefined);
    const fromSeed = jest.spyOn(nacl.sign.keyPair, 'fromSeed');
    const p = freshPrimitives();
    expect(await p.secAggCryptoBackends()).toEqual({ ed25519: 'tweetnacl', x25519: 'tweetnacl' });
    expect(fromSeed).not.toHaveBeenCalled(); // the probe's throwaway keys are never made

    const message = new Uint8Array(0);
    expect(hex(await p.signMessage(message, RFC8032_IDENTITY))).toBe(RFC8032_SIGNATURE);
    expect(await p.verifySignature(message, fromHex(RFC8032_SIGNATURE), RFC8032_PUBLIC)).toBe(true);
    expect(hex(await p.x25519PublicKey(ALICE_SECRET))).toBe(hex(ALICE_PUBLIC));
    const expected = diffieHellman({
      privateKey: nodePrivateKey('X25519', ALICE_SECRET, ALICE_PUBLIC),
      publicKey: nodePublicKey('X25519', BOB_PUBLIC),
    });
    expect(hex(await p.x25519(ALICE_SECRET, BOB_PUBLIC))).toBe(hex(expected));
    expect(hex(await p.boxSharedKey(ALICE_SECRET, BOB_PUBLIC))).toBe(
      hex(nacl.box.before(BOB_PUBLIC, ALICE_SECRET)),
    );
  });

  it('with a sound WebCrypto: every primitive runs natively and matches the vectors', async () => {
    const subtle = installRecordingSubtle();
    const p = freshPrimitives();
    expect(await p.secAggCryptoBackends()).toEqual({ ed25519: 'webcrypto', x25519: 'webcrypto' });
    subtle.resetCounts();

    const message = new Uint8Array(0);
    expect(hex(await p.signMessage(message, RFC8032_IDENTITY))).toBe(RFC8032_SIGNATURE);
    expect(subtle.calls.sign).toBe(1);
    expect(await p.verifySignature(message, fromHex(RFC8032_SIGNATURE), RFC8032_PUBLIC)).toBe(true);
    expect(subtle.calls.verify).toBe(1);

    const expected = diffieHellman({
      privateKey: nodePrivateKey('X25519', ALICE_SECRET, ALICE_PUBLIC),
      publicKey: nodePublicKey('X25519', BOB_PUBLIC),
    });
    expect(hex(await p.x25519(ALICE_SECRET, BOB_PUBLIC))).toBe(hex(expected));
    expect(subtle.calls.deriveBits).toBe(1);
    expect(hex(await p.x25519PublicKey(BOB_SECRET))).toBe(hex(BOB_PUBLIC));
    expect(subtle.calls.deriveBits).toBe(2);
    expect(hex(await p.boxSharedKey(BOB_SECRET, ALICE_PUBLIC))).toBe(
      hex(nacl.box.before(ALICE_PUBLIC, BOB_SECRET)),
    );
    expect(subtle.calls.deriveBits).toBe(3);
  });

  it('imports keys non-extractable with only the usage needed, as RFC 8410 PKCS#8 it then wipes', async () => {
    const subtle = installRecordingSubtle();
    const p = freshPrimitives();
    await p.secAggCryptoBackends();
    // The self-test imported each kind once (the X25519 public keys twice: peer and base point).
    const kinds = subtle.imports.map((r) => `${r.format}/${r.algorithm}/${r.usages.join(',')}`);
    expect(kinds.sort()).toEqual([
      'pkcs8/Ed25519/sign',
      'pkcs8/X25519/deriveBits',
      'raw/Ed25519/verify',
      'raw/X25519/',
      'raw/X25519/',
    ]);
    subtle.resetCounts();

    await p.signMessage(new Uint8Array([5]), RFC8032_IDENTITY);
    await p.verifySignature(new Uint8Array(0), fromHex(RFC8032_SIGNATURE), RFC8032_PUBLIC);
    await p.x25519(ALICE_SECRET, BOB_PUBLIC);
    expect(subtle.imports.map((r) => `${r.format}/${r.algorithm}`).sort()).toEqual([
      'pkcs8/Ed25519',
      'pkcs8/X25519',
      'raw/Ed25519',
      'raw/X25519',
    ]);
    for (const record of subtle.imports) expect(record.extractable).toBe(false);

    const byKind = (format: string, algorithm: string): ImportRecord =>
      subtle.imports.find((r) => r.format === format && r.algorithm === algorithm)!;
    const ed = byKind('pkcs8', 'Ed25519');
    expect(hex(ed.bytes)).toBe(nodePkcs8('Ed25519', RFC8032_SEED, RFC8032_PUBLIC));
    expect(hex(ed.passed)).toBe('00'.repeat(48));
    const x = byKind('pkcs8', 'X25519');
    expect(hex(x.bytes)).toBe(nodePkcs8('X25519', ALICE_SECRET, ALICE_PUBLIC));
    expect(hex(x.passed)).toBe('00'.repeat(48));
    expect(hex(byKind('raw', 'Ed25519').bytes)).toBe(hex(RFC8032_PUBLIC));
    expect(hex(byKind('raw', 'X25519').bytes)).toBe(hex(BOB_PUBLIC));
  });

  it('caches imports per key array, forgets them on forgetCachedKeys, and retries a failed import', async () => {
    const subtle = installRecordingSubtle();
    const p = freshPrimitives();
    await p.secAggCryptoBackends();
    subtle.resetCounts();
    const message = new Uint8Array(0);
    const signature = fromHex(RFC8032_SIGNATURE);
    const publicKey = RFC8032_PUBLIC.slice();

    expect(await p.verifySignature(message, signature, publicKey)).toBe(true);
    expect(await p.verifySignature(message, signature, publicKey)).toBe(true);
    expect(subtle.calls.importKey).toBe(1);
    expect(await p.verifySignature(message, signature, publicKey.slice())).toBe(true);
    expect(subtle.calls.importKey).toBe(2); // same bytes, another array: not the same entry

    const secretKey = ALICE_SECRET.slice();
    await p.x25519(secretKey, publicKey); // the same array as an X25519 key: its own entries
    await p.x25519(secretKey, publicKey);
    expect(subtle.calls.importKey).toBe(4);

    p.forgetCachedKeys(undefined, publicKey);
    expect(await p.verifySignature(message, signature, publicKey)).toBe(true);
    expect(subtle.calls.importKey).toBe(5);
    await p.x25519(secretKey, BOB_PUBLIC);
    expect(subtle.calls.importKey).toBe(6); // the secret key's entry survived; BOB_PUBLIC is new

    let failures = 0;
    subtle.misbehave.importKey = () => {
      if (failures > 0) return undefined;
      failures++;
      return Promise.reject(new Error('transient import failure'));
    };
    const other = RFC8032_PUBLIC.slice();
    expect(await p.verifySignature(message, signature, other)).toBe(false);
    expect(await p.verifySignature(message, signature, other)).toBe(true);
    expect(subtle.calls.importKey).toBe(8);
  });

  describe('a WebCrypto that fails the self-test is not used', () => {
    const wrongUnlessBasePoint = (peer: Uint8Array | undefined, bits: Uint8Array): Uint8Array =>
      sameBytes(peer, BASE_POINT) ? bits : flipFirstByte(bits);
    const wrongOnBasePoint = (peer: Uint8Array | undefined, bits: Uint8Array): Uint8Array =>
      sameBytes(peer, BASE_POINT) ? flipFirstByte(bits) : bits;
    const cases: [string, Misbehaviour, { ed25519: string; x25519: string }][] = [
      [
        'verify accepts forgeries',
        { verify: () => true },
        { ed25519: 'tweetnacl', x25519: 'webcrypto' },
      ],
      [
        'verify rejects everything',
        { verify: () => false },
        { ed25519: 'tweetnacl', x25519: 'webcrypto' },
      ],
      [
        'verify accepts only forgeries',
        { verify: (_s, v) => !v },
        { ed25519: 'tweetnacl', x25519: 'webcrypto' },
      ],
      [
        'sign gives other bytes',
        { sign: flipFirstByte },
        { ed25519: 'tweetnacl', x25519: 'webcrypto' },
      ],
      [
        'Ed25519 import fails',
        {
          importKey: (r) =>
            r.algorithm === 'Ed25519' ? Promise.reject(new Error('no Ed25519')) : undefined,
        },
        { ed25519: 'tweetnacl', x25519: 'webcrypto' },
      ],
      [
        'X25519 agreement is wrong',
        { deriveBits: wrongUnlessBasePoint },
        { ed25519: 'webcrypto', x25519: 'tweetnacl' },
      ],
      [
        'X25519 public keys are wrong',
        { deriveBits: wrongOnBasePoint },
        { ed25519: 'webcrypto', x25519: 'tweetnacl' },
      ],
      [
        'X25519 import fails',
        {
          importKey: (r) =>
            r.algorithm === 'X25519' ? Promise.reject(new Error('no X25519')) : undefined,
        },
        { ed25519: 'webcrypto', x25519: 'tweetnacl' },
      ],
    ];

    it.each(cases)('%s', async (_name, misbehaviour, backends) => {
      const subtle = installRecordingSubtle();
      subtle.misbehave = misbehaviour;
      const p = freshPrimitives();
      expect(await p.secAggCryptoBackends()).toEqual(backends);
      // The primitives still give the right answers.
      const message = new Uint8Array(0);
      expect(hex(await p.signMessage(message, RFC8032_IDENTITY))).toBe(RFC8032_SIGNATURE);
      const forged = flipFirstByte(fromHex(RFC8032_SIGNATURE));
      expect(await p.verifySignature(message, forged, RFC8032_PUBLIC)).toBe(false);
      expect(hex(await p.x25519PublicKey(ALICE_SECRET))).toBe(hex(ALICE_PUBLIC));
      expect(hex(await p.boxSharedKey(ALICE_SECRET, BOB_PUBLIC))).toBe(
        hex(nacl.box.before(BOB_PUBLIC, ALICE_SECRET)),
      );
    });
  });

  it('verifySignature: malformed lengths never reach WebCrypto; a refused key is false, not a fallback', async () => {
    const subtle = installRecordingSubtle();
    const p = freshPrimitives();
    await p.secAggCryptoBackends();
    subtle.resetCounts();
    const message = new Uint8Array(0);
    const signature = fromHex(RFC8032_SIGNATURE);
    const padded = new Uint8Array([...signature, 0]);
    expect(await p.verifySignature(message, signature.subarray(0, 63), RFC8032_PUBLIC)).toBe(false);
    expect(await p.verifySignature(message, padded, RFC8032_PUBLIC)).toBe(false);
    expect(await p.verifySignature(message, signature, RFC8032_PUBLIC.subarray(0, 31))).toBe(false);
    expect(await p.verifySignature(message, signature, new Uint8Array(33))).toBe(false);
    expect(subtle.calls).toEqual({ importKey: 0, sign: 0, verify: 0, deriveBits: 0 });

    // A platform that refuses a key (e.g. not a valid point) or errors while verifying.
    subtle.misbehave.importKey = () => Promise.reject(new Error('refused'));
    expect(await p.verifySignature(message, signature, RFC8032_PUBLIC.slice())).toBe(false);
    subtle.misbehave = {
      verify: () => {
        throw new Error('verify failed');
      },
    };
    expect(await p.verifySignature(message, signature, RFC8032_PUBLIC.slice())).toBe(false);
    expect(subtle.calls.verify).toBe(1);
  });

  it("setSecAggCryptoBackend('tweetnacl') keeps a misbehaving WebCrypto out of every primitive", async () => {
    const subtle = installRecordingSubtle();
    subtle.misbehave = {
      verify: () => true,
      sign: flipFirstByte,
      deriveBits: (_peer, bits) => flipFirstByte(bits),
    };
    const p = freshPrimitives();
    p.setSecAggCryptoBackend('tweetnacl');
    expect(await p.secAggCryptoBackends()).toEqual({ ed25519: 'tweetnacl', x25519: 'tweetnacl' });
    const message = new Uint8Array(0);
    expect(hex(await p.signMessage(message, RFC8032_IDENTITY))).toBe(RFC8032_SIGNATURE);
    const forged = flipFirstByte(fromHex(RFC8032_SIGNATURE));
    expect(await p.verifySignature(message, forged, RFC8032_PUBLIC)).toBe(false);
    expect(hex(await p.x25519PublicKey(ALICE_SECRET))).toBe(hex(ALICE_PUBLIC));
    const expected = diffieHellman({
      privateKey: nodePrivateKey('X25519', ALICE_SECRET, ALICE_PUBLIC),
      publicKey: nodePublicKey('X25519', BOB_PUBLIC),
    });
    expect(hex(await p.x25519(ALICE_SECRET, BOB_PUBLIC))).toBe(hex(expected));
    expect(hex(await p.boxSharedKey(ALICE_SECRET, BOB_PUBLIC))).toBe(
      hex(nacl.box.before(BOB_PUBLIC, ALICE_SECRET)),
    );
    expect(subtle.calls).toEqual({ importKey: 0, sign: 0, verify: 0, deriveBits: 0 });
  });
});
