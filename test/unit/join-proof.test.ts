import { createHmac, randomBytes } from 'node:crypto';
import { toHex } from '../../shared/bytes';
import { hmacSha512, joinProof, verifyJoinProof } from '../../shared/join-proof';

/**
 * The join proof's HMAC-SHA-512, built on tweetnacl's SHA-512 so the browser computes it
 * too, checked against node:crypto's own HMAC (an independent implementation) for keys
 * shorter than, equal to and longer than the 128-byte block; then what a proof binds.
 */

describe('hmacSha512', () => {
  it.each([0, 1, 20, 127, 128, 129, 300])('matches node:crypto for a %i-byte key', (keyLength) => {
    for (const messageLength of [0, 1, 111, 128, 1000]) {
      const key = randomBytes(keyLength);
      const message = randomBytes(messageLength);
      const expected = createHmac('sha512', key).update(message).digest('hex');
      expect(toHex(hmacSha512(new Uint8Array(key), new Uint8Array(message)))).toBe(expected);
    }
  });

  it('matches RFC 4231 test case 2 (key "Jefe")', () => {
    const key = new TextEncoder().encode('Jefe');
    const message = new TextEncoder().encode('what do ya want for nothing?');
    expect(toHex(hmacSha512(key, message))).toBe(
      '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737',
    );
  });
});

describe('join proofs', () => {
  const token = 'correct-horse-battery-staple';
  const context = {
    nonce: 'ab'.repeat(32),
    coordinatorId: 'c'.repeat(64),
    publicKey: 'd'.repeat(64),
  };

  it('is the documented HMAC of the domain-tagged context under the token', () => {
    const expected = createHmac('sha512', token)
      .update(`cohort-join-v1\n${context.nonce}\n${context.coordinatorId}\n${context.publicKey}`)
      .digest('hex');
    expect(joinProof(token, context)).toBe(expected);
  });

  it('verifies for the same token and context only', () => {
    const proof = joinProof(token, context);
    expect(verifyJoinProof(token, context, proof)).toBe(true);
    expect(verifyJoinProof(token, context, proof.toUpperCase())).toBe(true);
    expect(verifyJoinProof(`${token}!`, context, proof)).toBe(false);
    for (const field of ['nonce', 'coordinatorId', 'publicKey'] as const) {
      const other = { ...context, [field]: 'e'.repeat(context[field].length) };
      expect(verifyJoinProof(token, other, proof)).toBe(false);
    }
    expect(verifyJoinProof(token, context, proof.slice(0, -2))).toBe(false);
    expect(verifyJoinProof(token, context, '')).toBe(false);
  });
});
