import nacl from 'tweetnacl';
import { openBundle, sealBundle } from '../../shared/secagg/signed-payloads';
import type { ShareBundle } from '../../shared/secagg/signed-payloads';
import { SHARE_LENGTH } from '../../shared/secagg/shamir';
import { rejectionOf } from '../helpers/error-of';

/**
 * Sealed share bundles, one rule at a time: what opens, and which code each way of being the
 * wrong bundle gets (another view is a split by the coordinator, SECAGG_INCONSISTENT; any
 * other mismatch or tampering is SECAGG_DECRYPT).
 */

const alice = nacl.box.keyPair();
const bob = nacl.box.keyPair();
const view = new Uint8Array(32).fill(7);

function bundle(overrides: Partial<ShareBundle> = {}): ShareBundle {
  return {
    viewHash: view,
    senderId: 'alice',
    recipientId: 'bob',
    selfMaskShare: new Uint8Array(SHARE_LENGTH).fill(1),
    secretKeyShare: new Uint8Array(SHARE_LENGTH).fill(2),
    ...overrides,
  };
}

const expected = { viewHash: view, senderId: 'alice', recipientId: 'bob' };

test('a bundle opens for its recipient with its contents intact', async () => {
  const sealed = await sealBundle(bundle(), bob.publicKey, alice.secretKey);
  const opened = await openBundle(
    expected,
    sealed.nonce,
    sealed.ciphertext,
    alice.publicKey,
    bob.secretKey,
  );
  expect(opened).toEqual(bundle());
});

test('a bundle sealed under another round view is SECAGG_INCONSISTENT', async () => {
  const other = new Uint8Array(32).fill(8);
  const sealed = await sealBundle(bundle({ viewHash: other }), bob.publicKey, alice.secretKey);
  expect(
    await rejectionOf(
      openBundle(expected, sealed.nonce, sealed.ciphertext, alice.publicKey, bob.secretKey),
    ),
  ).toBe('SECAGG_INCONSISTENT: bundle from alice was sealed under another participant list');
});

test('wrong names, share sizes, tampering or a reflected bundle are SECAGG_DECRYPT', async () => {
  const open = async (b: ShareBundle, mutate = (c: Uint8Array) => c) => {
    const sealed = await sealBundle(b, bob.publicKey, alice.secretKey);
    return rejectionOf(
      openBundle(expected, sealed.nonce, mutate(sealed.ciphertext), alice.publicKey, bob.secretKey),
    );
  };
  const wrongNames = 'SECAGG_DECRYPT: bundle from alice names the wrong sender or recipient';
  expect(await open(bundle({ senderId: 'mallory' }))).toBe(wrongNames);
  expect(await open(bundle({ recipientId: 'carol' }))).toBe(wrongNames);
  expect(await open(bundle({ selfMaskShare: new Uint8Array(SHARE_LENGTH - 1) }))).toBe(wrongNames);
  expect(await open(bundle({ secretKeyShare: new Uint8Array(SHARE_LENGTH + 1) }))).toBe(wrongNames);
  expect(
    await open(bundle(), (c) => {
      const copy = c.slice();
      copy[5] = copy[5]! ^ 1;
      return copy;
    }),
  ).toBe('SECAGG_DECRYPT: bundle from alice does not authenticate');
  // The box key is symmetric: reflected back to its sender it decrypts, and the names refuse it.
  const sealed = await sealBundle(bundle(), bob.publicKey, alice.secretKey);
  expect(
    await rejectionOf(
      openBundle(
        { viewHash: view, senderId: 'bob', recipientId: 'alice' },
        sealed.nonce,
        sealed.ciphertext,
        bob.publicKey,
        alice.secretKey,
      ),
    ),
  ).toBe('SECAGG_DECRYPT: bundle from bob names the wrong sender or recipient');
});

test('a bundle that authenticates but does not decode is SECAGG_DECRYPT, malformed', async () => {
  // Sealed under the right key, but the plaintext is not an encoded share bundle.
  const nonce = nacl.randomBytes(nacl.box.nonceLength);
  const ciphertext = nacl.box(new Uint8Array([1, 2, 3]), nonce, bob.publicKey, alice.secretKey);
  expect(
    await rejectionOf(openBundle(expected, nonce, ciphertext, alice.publicKey, bob.secretKey)),
  ).toBe('SECAGG_DECRYPT: bundle from alice is malformed');
});
