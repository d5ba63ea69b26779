import {
  createCipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { setSecAggCryptoBackend } from '../../shared/secagg/crypto-primitives';
import { graphSeed } from '../../shared/secagg/graph';
import type { AdvertisedKeys } from '../../shared/secagg/messages';
import type { SecAggConfig } from '../../shared/secagg/params';
import { configHash } from '../../shared/secagg/params';
import { packLowBits } from '../../shared/secagg/packing';
import { expandMask, prgKeyFromSeed, setPrgBackend } from '../../shared/secagg/prg';
import { roundViewHash } from '../../shared/secagg/round-view';
import type { RoundContext } from '../../shared/secagg/signed-payloads';
import { pairwiseSeed } from '../../shared/secagg/signed-payloads';

/**
 * Known-answer vectors for the mask generator and every key derivation of secure
 * aggregation, checked in Node against a re-implementation of the documented construction
 * that uses node:crypto only (nothing from shared/ computes an expected value here):
 *
 * - encodeFields(domain, fields): for the domain label and then each field, 1 tag byte
 *   (1 = UTF-8 text, 0 = raw bytes), a 4-byte big-endian length, the bytes;
 * - hash32(domain, fields) = the first 32 bytes of SHA-512(encodeFields(domain, fields));
 * - prgKeyFromSeed(seed) = hash32('cohort/secagg/v1/prg-key', [seed]);
 * - expandMask(seed, n) = AES-256-CTR under that key over zero bytes, 16-byte counter block
 *   starting at 0; element i = the little-endian uint32 at keystream bytes 4i..4i+3;
 * - pairwiseSeed(roundId, sk, pk) = hash32('cohort/secagg/v1/pairwise-seed', [roundId,
 *   X25519(sk, pk)]);
 * - graphSeed(viewHash) = hash32('cohort/secagg/v1/graph-seed', [viewHash]);
 * - configHash(config) = hex(hash32('cohort/secagg/v1/config-hash', ['modulusBits,
 *   vectorLength,clipRange,scale,weightCap,maxClients'])), numbers as JavaScript prints them;
 * - roundViewHash(ctx, ads) = hash32('cohort/secagg/v2/round-view', [coordinatorId,
 *   experiment, roundId, modelHash, configHash, String(ads.length), then per advertisement
 *   clientId, identityPublicKey, cPublicKey, sPublicKey, signature]);
 * - packLowBits(words, 24) = the low 3 bytes of each little-endian uint32, in order (the
 *   masked input on the wire at modulusBits 24).
 *
 * The hex literals were computed once with exactly these reference functions and pinned, so
 * a change of label, field order, encoding or cipher mode fails here even if the
 * implementation and the reference were changed together.
 */

type Field = string | Uint8Array;

/** encodeFields, rebuilt from its documented format. */
function referenceEncode(domain: string, fields: readonly Field[]): Buffer {
  const one = (tag: number, bytes: Buffer): Buffer => {
    const header = Buffer.alloc(5);
    header[0] = tag;
    header.writeUInt32BE(bytes.length, 1);
    return Buffer.concat([header, bytes]);
  };
  return Buffer.concat([
    one(1, Buffer.from(domain, 'utf8')),
    ...fields.map((f) =>
      typeof f === 'string' ? one(1, Buffer.from(f, 'utf8')) : one(0, Buffer.from(f)),
    ),
  ]);
}

/** hash32: the first half of SHA-512 over the encoding. */
function referenceHash32(domain: string, fields: readonly Field[]): Buffer {
  return createHash('sha512').update(referenceEncode(domain, fields)).digest().subarray(0, 32);
}

function referencePrgKey(seed: Uint8Array): Buffer {
  return referenceHash32('cohort/secagg/v1/prg-key', [seed]);
}

function referenceMask(seed: Uint8Array, length: number): Uint32Array {
  const cipher = createCipheriv('aes-256-ctr', referencePrgKey(seed), Buffer.alloc(16));
  const stream = cipher.update(Buffer.alloc(Math.ceil(length / 4) * 16));
  const out = new Uint32Array(length);
  for (let i = 0; i < length; i++) out[i] = stream.readUInt32LE(4 * i);
  return out;
}

/** RFC 8410 PKCS#8 wrapper of a raw X25519 private key. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

function x25519Private(raw: Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([X25519_PKCS8_PREFIX, Buffer.from(raw)]),
    format: 'der',
    type: 'pkcs8',
  });
}

function x25519Public(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') },
    format: 'jwk',
  });
}

function x25519PublicRaw(secret: Uint8Array): Buffer {
  const jwk = createPublicKey(x25519Private(secret)).export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

function referenceX25519(secret: Uint8Array, peerPublic: Uint8Array): Buffer {
  return diffieHellman({ privateKey: x25519Private(secret), publicKey: x25519Public(peerPublic) });
}

function referencePairwiseSeed(roundId: string, secret: Uint8Array, peer: Uint8Array): Buffer {
  return referenceHash32('cohort/secagg/v1/pairwise-seed', [
    roundId,
    referenceX25519(secret, peer),
  ]);
}

function referenceGraphSeed(viewHash: Uint8Array): Buffer {
  return referenceHash32('cohort/secagg/v1/graph-seed', [viewHash]);
}

function referenceConfigHash(c: SecAggConfig): string {
  const canonical = [
    c.modulusBits,
    c.vectorLength,
    c.clipRange,
    c.scale,
    c.weightCap,
    c.maxClients,
  ].join(',');
  return referenceHash32('cohort/secagg/v1/config-hash', [canonical]).toString('hex');
}

function referenceRoundViewHash(ctx: RoundContext, ads: readonly AdvertisedKeys[]): Buffer {
  const fields: Field[] = [
    ctx.coordinatorId,
    ctx.experiment,
    ctx.roundId,
    ctx.modelHash,
    ctx.configHash,
    String(ads.length),
  ];
  for (const a of ads) {
    fields.push(a.clientId, a.identityPublicKey, a.cPublicKey, a.sPublicKey, a.signature);
  }
  return referenceHash32('cohort/secagg/v2/round-view', fields);
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const filled = (length: number, start: number): Uint8Array =>
  Uint8Array.from({ length }, (_, i) => (start + i * 7) & 0xff);

const SEED_ZERO = new Uint8Array(32);
const SEED_COUNTING = Uint8Array.from({ length: 32 }, (_, i) => i);
const SEED_RANDOM = fromHex('fd2d327c2a869070acf59d82faa3f6281351f9d40212070c8fe3fe2cd60e1ed3');

// RFC 7748 section 6.1 (Alice and Bob).
const ALICE_SECRET = fromHex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
const ALICE_PUBLIC = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
const BOB_SECRET = fromHex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
const BOB_PUBLIC = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
const RFC7748_SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';

const CONFIG: SecAggConfig = {
  modulusBits: 32,
  vectorLength: 101_770,
  clipRange: 4,
  scale: 1024,
  weightCap: 16_384,
  maxClients: 5,
};
/** A fractional clip range pins how numbers are printed into the canonical string. */
const CONFIG_FRACTIONAL: SecAggConfig = { ...CONFIG, clipRange: 0.5, scale: 8192 };
/** The 24-bit wire width (scale 16 is the one derived for 5 clients at 24 bits). */
const CONFIG_24: SecAggConfig = { ...CONFIG, modulusBits: 24, scale: 16 };

/** The 24-bit wire form of little-endian uint32 bytes: every fourth (high) byte dropped. */
function referencePack24(le32: Buffer): Buffer {
  const out = Buffer.alloc((le32.length / 4) * 3);
  for (let i = 0; i < le32.length / 4; i++) le32.copy(out, 3 * i, 4 * i, 4 * i + 3);
  return out;
}

const CONTEXT: RoundContext = {
  coordinatorId: 'c0'.repeat(32),
  experiment: 'known-answers',
  roundId: 'round-0001',
  modelHash: 'ab'.repeat(32),
  configHash: '12'.repeat(32),
};

const ADVERTISEMENTS: AdvertisedKeys[] = ['client-a', 'client-b', 'client-c'].map((id, i) => ({
  clientId: id,
  identityPublicKey: filled(32, 16 * i + 1),
  cPublicKey: filled(32, 16 * i + 2),
  sPublicKey: filled(32, 16 * i + 3),
  signature: filled(64, 16 * i + 4),
}));

/** Pinned outputs of the reference functions above (node:crypto only). */
const PINNED = {
  prgKeyZero: '55d84875e6ce3b5ae05a31f99b7b1534f83a313bb25b2c6c6f5a78b0e1a0d937',
  prgKeyCounting: 'e41ab1e36ca73b952ad6b2282f3a7816be8068b283af891ecb6dc2258d1f4b2d',
  /** The first 48 keystream bytes for SEED_COUNTING (12 elements). */
  keystreamCounting:
    '0b1ce7e3ccc2a7b1420c32e8141193911006181d6d588bfcc4cd5663a7087982' +
    'ce94ce889eca28f48cbb6e6739429c5b',
  /** Elements 0..4 for SEED_ZERO (the same values test/browser/mask-generator.test.ts pins). */
  maskZero5: [4053749356, 2433745953, 74590626, 251667563, 3919264665],
  pairwiseAliceBob: '1287ba6f2eb9d88dd746796a84408a14dc4e4806b2f34dd5644bb1a0493951e7',
  configHash: '56a2e9003e2a750e7e65a5344bcb879518501bba3d607a72f9856a7eda27772d',
  configHashFractional: 'a1cf0bb425c288b145939c87178bb9512f23810588980f9f6cbb112b5c8aa1ba',
  configHash24: '6162677e8b6e5adba4a537ef67ad485d381747fa5ecebfc7f412d762efef69ce',
  /** keystreamCounting's 12 elements at 24 bits on the wire. */
  keystreamCounting24: '0b1ce7ccc2a7420c321411931006186d588bc4cd56a70879ce94ce9eca288cbb6e39429c',
  roundView: '2ab45eb1e2255339ed008d85372106d8d9ba2990cf688c2728e74c456921e1d8',
  graphSeedOfRoundView: 'dd6d04027f76b6b4ff55960aa417ba5d00ae72450f6cd07b5304b13f887ea26c',
};

afterEach(() => setSecAggCryptoBackend('auto'));

describe('the node:crypto reference reproduces the pinned vectors', () => {
  it('hash-based derivations', () => {
    expect(hex(referencePrgKey(SEED_ZERO))).toBe(PINNED.prgKeyZero);
    expect(hex(referencePrgKey(SEED_COUNTING))).toBe(PINNED.prgKeyCounting);
    expect(referenceConfigHash(CONFIG)).toBe(PINNED.configHash);
    expect(referenceConfigHash(CONFIG_FRACTIONAL)).toBe(PINNED.configHashFractional);
    expect(referenceConfigHash(CONFIG_24)).toBe(PINNED.configHash24);
    expect(hex(referencePack24(Buffer.from(PINNED.keystreamCounting, 'hex')))).toBe(
      PINNED.keystreamCounting24,
    );
    const view = referenceRoundViewHash(CONTEXT, ADVERTISEMENTS);
    expect(hex(view)).toBe(PINNED.roundView);
    expect(hex(referenceGraphSeed(view))).toBe(PINNED.graphSeedOfRoundView);
  });

  it('the keystream and X25519 (RFC 7748 section 6.1)', () => {
    const words = referenceMask(SEED_COUNTING, 12);
    expect(hex(new Uint8Array(words.buffer))).toBe(PINNED.keystreamCounting);
    expect(Array.from(referenceMask(SEED_ZERO, 5))).toEqual(PINNED.maskZero5);
    expect(hex(x25519PublicRaw(ALICE_SECRET))).toBe(ALICE_PUBLIC);
    expect(hex(x25519PublicRaw(BOB_SECRET))).toBe(BOB_PUBLIC);
    expect(hex(referenceX25519(ALICE_SECRET, fromHex(BOB_PUBLIC)))).toBe(RFC7748_SHARED);
    expect(hex(referencePairwiseSeed('round-0001', ALICE_SECRET, fromHex(BOB_PUBLIC)))).toBe(
      PINNED.pairwiseAliceBob,
    );
  });
});

describe('prgKeyFromSeed', () => {
  it('equals the pinned vectors and the reference for other seeds', () => {
    expect(hex(prgKeyFromSeed(SEED_ZERO))).toBe(PINNED.prgKeyZero);
    expect(hex(prgKeyFromSeed(SEED_COUNTING))).toBe(PINNED.prgKeyCounting);
    for (const seed of [SEED_RANDOM, filled(32, 200), new Uint8Array(32).fill(0xff)]) {
      expect(hex(prgKeyFromSeed(seed))).toBe(hex(referencePrgKey(seed)));
    }
  });

  it('is never the raw seed or an undomained SHA-512', () => {
    const plain = createHash('sha512').update(SEED_COUNTING).digest().subarray(0, 32);
    expect(hex(prgKeyFromSeed(SEED_COUNTING))).not.toBe(hex(SEED_COUNTING));
    expect(hex(prgKeyFromSeed(SEED_COUNTING))).not.toBe(hex(plain));
  });
});

// Every vector under each keystream implementation: a browser (WebCrypto) and a Node client or
// coordinator (node:crypto's cipher) must expand bit-identical masks, or the sum never unmasks.
describe.each(['webcrypto', 'node-cipher'] as const)('expandMask (%s PRG)', (backend) => {
  beforeEach(() => setPrgBackend(backend));
  afterAll(() => setPrgBackend('auto'));

  it('equals the pinned keystream elements', async () => {
    const words = await expandMask(SEED_COUNTING, 12);
    expect(hex(new Uint8Array(words.buffer, words.byteOffset, words.byteLength))).toBe(
      PINNED.keystreamCounting,
    );
    expect(Array.from(await expandMask(SEED_ZERO, 5))).toEqual(PINNED.maskZero5);
  });

  it('packs the pinned keystream elements to the pinned 24-bit wire bytes', async () => {
    const words = await expandMask(SEED_COUNTING, 12);
    expect(hex(packLowBits(words, 24))).toBe(PINNED.keystreamCounting24);
    const long = await expandMask(SEED_RANDOM, 1003);
    const le32 = Buffer.from(long.buffer, long.byteOffset, long.byteLength);
    expect(hex(packLowBits(long, 24))).toBe(hex(referencePack24(le32)));
  });

  it.each([
    ['a partial last block', SEED_RANDOM, 7, undefined],
    ['one element', SEED_ZERO, 1, undefined],
    ['many blocks', SEED_RANDOM, 4099, undefined],
    ['chunks of 4 elements (the counter advances across calls)', SEED_COUNTING, 29, 4],
    ['chunks of 8 elements', SEED_RANDOM, 1003, 8],
    ['more than one 64 KiB node:crypto chunk', SEED_COUNTING, 40_003, undefined],
  ] as const)('matches AES-256-CTR from node:crypto: %s', async (_label, seed, length, chunk) => {
    const mask = await expandMask(seed, length, chunk);
    expect(mask).toHaveLength(length);
    expect(Array.from(mask)).toEqual(Array.from(referenceMask(seed, length)));
  });

  it('different seeds give different masks', async () => {
    const a = await expandMask(SEED_COUNTING, 8);
    const b = await expandMask(SEED_RANDOM, 8);
    expect(Array.from(a)).not.toEqual(Array.from(b));
  });
});

describe.each(['auto', 'tweetnacl'] as const)('pairwiseSeed (%s crypto backend)', (backend) => {
  beforeEach(() => setSecAggCryptoBackend(backend));

  it('equals the pinned RFC 7748 vector, from either side', async () => {
    const ab = await pairwiseSeed('round-0001', ALICE_SECRET, fromHex(BOB_PUBLIC));
    const ba = await pairwiseSeed('round-0001', BOB_SECRET, fromHex(ALICE_PUBLIC));
    expect(hex(ab)).toBe(PINNED.pairwiseAliceBob);
    expect(hex(ba)).toBe(PINNED.pairwiseAliceBob);
  });

  it('equals node:crypto X25519 + the domain-separated hash for other keys and rounds', async () => {
    const secret = filled(32, 9);
    const peerSecret = filled(32, 101);
    const peerPublic = x25519PublicRaw(peerSecret);
    for (const roundId of ['r1', 'round-0001', 'a'.repeat(120)]) {
      const seed = await pairwiseSeed(roundId, secret, peerPublic);
      expect(hex(seed)).toBe(hex(referencePairwiseSeed(roundId, secret, peerPublic)));
    }
    // The round id is bound: another round, another seed.
    const r1 = await pairwiseSeed('r1', secret, peerPublic);
    const r2 = await pairwiseSeed('r2', secret, peerPublic);
    expect(hex(r1)).not.toBe(hex(r2));
  });
});

describe('configHash', () => {
  it('equals the pinned vectors and the reference', () => {
    expect(configHash(CONFIG)).toBe(PINNED.configHash);
    expect(configHash(CONFIG_FRACTIONAL)).toBe(PINNED.configHashFractional);
    expect(configHash(CONFIG_24)).toBe(PINNED.configHash24);
    for (const change of [
      { vectorLength: 10 },
      { weightCap: 1 },
      { maxClients: 1000 },
      { scale: 1 },
      { modulusBits: 16 },
    ] as Partial<SecAggConfig>[]) {
      const config = { ...CONFIG, ...change };
      expect(configHash(config)).toBe(referenceConfigHash(config));
      expect(configHash(config)).not.toBe(PINNED.configHash);
    }
  });
});

describe('roundViewHash and graphSeed', () => {
  it('equal the pinned vectors', () => {
    const view = roundViewHash(CONTEXT, ADVERTISEMENTS);
    expect(hex(view)).toBe(PINNED.roundView);
    expect(hex(graphSeed(view))).toBe(PINNED.graphSeedOfRoundView);
  });

  it('equal the reference when any context field or advertisement changes', () => {
    const variants: [RoundContext, AdvertisedKeys[]][] = [
      [{ ...CONTEXT, roundId: 'round-0002' }, ADVERTISEMENTS],
      [{ ...CONTEXT, experiment: 'other' }, ADVERTISEMENTS],
      [{ ...CONTEXT, configHash: PINNED.configHash }, ADVERTISEMENTS],
      [CONTEXT, ADVERTISEMENTS.slice(0, 2)],
      [CONTEXT, [{ ...ADVERTISEMENTS[0]!, signature: filled(64, 77) }, ...ADVERTISEMENTS.slice(1)]],
    ];
    const seen = new Set([PINNED.roundView]);
    for (const [ctx, ads] of variants) {
      const view = roundViewHash(ctx, ads);
      expect(hex(view)).toBe(hex(referenceRoundViewHash(ctx, ads)));
      expect(hex(graphSeed(view))).toBe(hex(referenceGraphSeed(view)));
      seen.add(hex(view));
    }
    expect(seen.size).toBe(variants.length + 1);
  });
});
