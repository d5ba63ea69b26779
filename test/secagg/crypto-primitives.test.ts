import nacl from 'tweetnacl';
import { generateIdentity } from '../../shared/identity';
import {
  runInMemorySecAggRound,
  secAggCryptoBackends,
  setSecAggCryptoBackend,
} from '../../shared/secagg';
import {
  boxSharedKey,
  generateBoxKeyPair,
  signMessage,
  verifySignature,
  x25519,
  x25519PublicKey,
} from '../../shared/secagg/crypto-primitives';
import {
  MODEL_HASH,
  makeClients,
  maxAbsDiff,
  plainWeightedMean,
  quantizationTolerance,
  smallConfig,
} from './helpers';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

afterEach(() => setSecAggCryptoBackend('auto'));

describe('native (WebCrypto) and tweetnacl primitives agree bit for bit', () => {
  it('uses WebCrypto on Node 20', async () => {
    expect(await secAggCryptoBackends()).toEqual({ ed25519: 'webcrypto', x25519: 'webcrypto' });
    setSecAggCryptoBackend('tweetnacl');
    expect(await secAggCryptoBackends()).toEqual({ ed25519: 'tweetnacl', x25519: 'tweetnacl' });
  });

  it('Ed25519: same signatures, same verdicts', async () => {
    const identity = generateIdentity();
    for (const length of [0, 1, 100]) {
      const message = crypto.getRandomValues(new Uint8Array(length));
      const signature = await signMessage(message, identity);
      expect(hex(signature)).toBe(hex(nacl.sign.detached(message, identity.secretKey)));
      expect(await verifySignature(message, signature, identity.publicKey)).toBe(true);
      const forged = signature.slice();
      forged[10] = forged[10]! ^ 4;
      expect(await verifySignature(message, forged, identity.publicKey)).toBe(false);
      expect(await verifySignature(message, signature.subarray(0, 63), identity.publicKey)).toBe(
        false,
      );
      expect(await verifySignature(message, signature, generateIdentity().publicKey)).toBe(false);
    }
  });

  it('X25519: same shared secrets, public keys and nacl.box keys', async () => {
    const a = await generateBoxKeyPair();
    const b = nacl.box.keyPair();
    expect(hex(a.publicKey)).toBe(hex(nacl.scalarMult.base(a.secretKey)));
    expect(hex(await x25519PublicKey(b.secretKey))).toBe(hex(b.publicKey));
    expect(hex(await x25519(a.secretKey, b.publicKey))).toBe(
      hex(nacl.scalarMult(b.secretKey, a.publicKey)),
    );
    expect(hex(await boxSharedKey(a.secretKey, b.publicKey))).toBe(
      hex(nacl.box.before(b.publicKey, a.secretKey)),
    );
    // A sealed bundle opens with plain nacl.box.open.
    const nonce = nacl.randomBytes(24);
    const sealed = nacl.secretbox(
      new Uint8Array([1, 2, 3]),
      nonce,
      await boxSharedKey(a.secretKey, b.publicKey),
    );
    expect(Array.from(nacl.box.open(sealed, nonce, a.publicKey, b.secretKey)!)).toEqual([1, 2, 3]);
    // A low-order public key gives zeros on both backends instead of an exception.
    expect(hex(await x25519(a.secretKey, new Uint8Array(32)))).toBe('0'.repeat(64));
  });

  it('a whole round runs on the tweetnacl fallback (browsers without WebCrypto Ed25519/X25519)', async () => {
    setSecAggCryptoBackend('tweetnacl');
    const config = smallConfig(3, 8);
    const clients = makeClients(3, 8, 21);
    const report = await runInMemorySecAggRound({
      roundId: 'r-nacl',
      modelHash: MODEL_HASH,
      config,
      clients,
    });
    expect(report.error).toBeUndefined();
    const expected = plainWeightedMean(clients, config);
    expect(maxAbsDiff(report.result!.weightedMean, expected.mean)).toBeLessThan(
      quantizationTolerance(3, config, expected.totalWeight),
    );
  });
});
