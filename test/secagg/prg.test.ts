import { createCipheriv } from 'node:crypto';
import { addMask, expandMask, prgKeyFromSeed } from '../../shared/secagg';

/** The keystream standard AES-256-CTR (zero IV, 128-bit big-endian counter) gives, as LE uint32. */
function referenceMask(seed: Uint8Array, length: number): Uint32Array {
  const cipher = createCipheriv('aes-256-ctr', prgKeyFromSeed(seed), Buffer.alloc(16));
  const bytes = cipher.update(Buffer.alloc(Math.ceil(length / 4) * 16));
  const out = new Uint32Array(length);
  for (let i = 0; i < length; i++) out[i] = bytes.readUInt32LE(4 * i);
  return out;
}

const seedA = new Uint8Array(32).map((_, i) => i);
const seedB = new Uint8Array(32).map((_, i) => 255 - i);

describe('AES-256-CTR mask generator (WebCrypto)', () => {
  it.each([1, 3, 4, 5, 257, 4096])(
    'matches node:crypto AES-256-CTR for %i elements',
    async (length) => {
      expect(Array.from(await expandMask(seedA, length))).toEqual(
        Array.from(referenceMask(seedA, length)),
      );
    },
  );

  it('continues the counter across chunk boundaries', async () => {
    // Chunks of 8 elements = 2 AES blocks: 37 elements need 5 calls, the last one partial.
    expect(Array.from(await expandMask(seedB, 37, 8))).toEqual(
      Array.from(referenceMask(seedB, 37)),
    );
    const big = (1 << 20) + 3; // default chunk size plus a partial chunk
    const mask = await expandMask(seedB, big);
    const reference = referenceMask(seedB, big);
    expect(Buffer.from(mask.buffer).equals(Buffer.from(reference.buffer))).toBe(true);
  });

  it('keys AES with a domain-separated hash of the seed, never the seed itself', async () => {
    expect(Buffer.from(prgKeyFromSeed(seedA)).equals(Buffer.from(seedA))).toBe(false);
    const raw = createCipheriv('aes-256-ctr', seedA, Buffer.alloc(16)).update(Buffer.alloc(16));
    const mask = await expandMask(seedA, 4);
    expect(Buffer.from(mask.buffer).equals(raw)).toBe(false);
  });

  it('adds and removes masks mod 2^32 in place', async () => {
    const length = 1000;
    const original = new Uint32Array(length).map((_, i) => (i * 2654435761) >>> 0);
    const target = original.slice();
    await addMask(target, seedA, 1, 64);
    const mask = referenceMask(seedA, length);
    for (let i = 0; i < length; i++) expect(target[i]).toBe((original[i]! + mask[i]!) >>> 0);
    await addMask(target, seedB, 1);
    await addMask(target, seedA, -1);
    await addMask(target, seedB, -1, 12);
    expect(Array.from(target)).toEqual(Array.from(original));
  });

  it('gives different streams for different seeds and refuses short seeds', async () => {
    const a = await expandMask(seedA, 64);
    const b = await expandMask(seedB, 64);
    expect(a.some((x, i) => x !== b[i])).toBe(true);
    await expect(expandMask(new Uint8Array(16), 4)).rejects.toThrow(/32 bytes/);
  });
});
