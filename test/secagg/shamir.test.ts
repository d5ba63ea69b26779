import { combine } from 'shamir-secret-sharing';
import { SHARE_LENGTH, combineShares, splitSecret } from '../../shared/secagg';

function subsets<T>(items: T[], size: number): T[][] {
  if (size === 0) return [[]];
  if (items.length < size) return [];
  const [first, ...rest] = items;
  return [...subsets(rest, size - 1).map((s) => [first!, ...s]), ...subsets(rest, size)];
}

const secret = crypto.getRandomValues(new Uint8Array(32));

describe('Shamir wrapper over shamir-secret-sharing (GF(256))', () => {
  it('any t of n shares reconstruct the secret, in any order', async () => {
    const shares = await splitSecret(secret, 7, 4);
    expect(shares).toHaveLength(7);
    const all = subsets(shares, 4);
    expect(all).toHaveLength(35);
    for (const subset of all) {
      expect(
        Buffer.from(await combineShares(subset.reverse(), 4)).equals(Buffer.from(secret)),
      ).toBe(true);
    }
  });

  it('t - 1 shares are refused, and the raw library gives a wrong secret from them', async () => {
    const shares = await splitSecret(secret, 7, 4);
    await expect(combineShares(shares.slice(0, 3), 4)).rejects.toThrow(/SECAGG_BELOW_THRESHOLD/);
    const guess = await combine(shares.slice(0, 3).map((s) => new Uint8Array(s)));
    expect(Buffer.from(guess).equals(Buffer.from(secret))).toBe(false);
  });

  it('shares carry distinct non-zero x-coordinates in their last byte', async () => {
    const shares = await splitSecret(secret, 255, 3);
    const xs = new Set(shares.map((s) => s[SHARE_LENGTH - 1]));
    expect(shares.every((s) => s.length === SHARE_LENGTH)).toBe(true);
    expect(xs.size).toBe(255);
    expect(xs.has(0)).toBe(false);
  });

  it('accepts shares delivered as Node Buffers; repeated shares do not count twice', async () => {
    const shares = await splitSecret(secret, 5, 3);
    const asBuffers = shares.map((s) => Buffer.from(s));
    expect(
      Buffer.from(await combineShares(asBuffers.slice(2), 3)).equals(Buffer.from(secret)),
    ).toBe(true);
    await expect(combineShares([shares[0]!, shares[0]!, shares[1]!], 3)).rejects.toThrow(
      /SECAGG_BELOW_THRESHOLD/,
    );
  });

  it('refuses impossible parameters', async () => {
    await expect(splitSecret(secret, 256, 3)).rejects.toThrow(/CONFIG_UNSAFE/);
    await expect(splitSecret(secret, 5, 1)).rejects.toThrow(/CONFIG_UNSAFE/);
    await expect(splitSecret(secret, 3, 4)).rejects.toThrow(/CONFIG_UNSAFE/);
    await expect(splitSecret(new Uint8Array(16), 5, 3)).rejects.toThrow(/32 bytes/);
  });
});
