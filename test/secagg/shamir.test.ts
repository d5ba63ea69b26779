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

  it('threshold 2 is the smallest allowed: any 2 shares rebuild, 1 is refused', async () => {
    const shares = await splitSecret(secret, 3, 2);
    expect(shares).toHaveLength(3);
    for (const pair of subsets(shares, 2)) {
      expect(Buffer.from(await combineShares(pair, 2)).equals(Buffer.from(secret))).toBe(true);
    }
    await expect(combineShares(shares.slice(0, 1), 2)).rejects.toThrow(
      'SECAGG_BELOW_THRESHOLD: 1 distinct shares, 2 needed to reconstruct',
    );
  });

  it('uses exactly the first t distinct shares: later ones cannot spoil the secret', async () => {
    const shares = await splitSecret(secret, 6, 3);
    // A corrupted value byte (not the x-coordinate) moves any interpolation through this share.
    const spoiled = new Uint8Array(shares[4]!);
    spoiled[0] = spoiled[0]! ^ 0xff;
    // Shares 0, 0 (repeat), 1 and 2 hold the first three distinct ones; share 4 comes after.
    const delivered = [shares[0]!, shares[0]!, shares[1]!, shares[2]!, spoiled];
    expect(Buffer.from(await combineShares(delivered, 3)).equals(Buffer.from(secret))).toBe(true);
    const rebuilt = await combineShares([spoiled, shares[1]!, shares[2]!], 3);
    expect(Buffer.from(rebuilt).equals(Buffer.from(secret))).toBe(false);
  });

  it('skips shares whose x-coordinate is 0 (never a valid share)', async () => {
    const shares = await splitSecret(secret, 4, 2);
    const zeroX = new Uint8Array(shares[0]!);
    zeroX[SHARE_LENGTH - 1] = 0;
    expect(
      Buffer.from(await combineShares([zeroX, shares[1]!, shares[2]!], 2)).equals(
        Buffer.from(secret),
      ),
    ).toBe(true);
    await expect(combineShares([zeroX, shares[3]!], 2)).rejects.toThrow(
      'SECAGG_BELOW_THRESHOLD: 1 distinct shares, 2 needed to reconstruct',
    );
  });

  it('refuses shares of the wrong length as MESSAGE_INVALID, wherever they are', async () => {
    const shares = await splitSecret(secret, 4, 2);
    const message = `MESSAGE_INVALID: a share must be ${SHARE_LENGTH} bytes`;
    const short = shares[2]!.slice(0, SHARE_LENGTH - 1);
    const long = new Uint8Array(SHARE_LENGTH + 1);
    long.set(shares[2]!);
    long[SHARE_LENGTH] = shares[2]![SHARE_LENGTH - 1]!;
    for (const bad of [short, long, new Uint8Array(0)]) {
      await expect(combineShares([bad, shares[0]!, shares[1]!], 2)).rejects.toThrow(message);
      await expect(combineShares([shares[0]!, bad, shares[1]!], 2)).rejects.toThrow(message);
    }
  });

  it.each([1, 0, -1])('refuses reconstruction with threshold %i', async (threshold) => {
    const shares = await splitSecret(secret, 4, 2);
    await expect(combineShares(shares, threshold)).rejects.toThrow(/^SECAGG_BELOW_THRESHOLD: /);
  });

  it('refuses impossible parameters', async () => {
    await expect(splitSecret(secret, 5, 2.5)).rejects.toThrow(/CONFIG_UNSAFE/);
    await expect(splitSecret(secret, 5.5, 3)).rejects.toThrow(/CONFIG_UNSAFE/);
    await expect(splitSecret(secret, NaN, 3)).rejects.toThrow(/CONFIG_UNSAFE/);
    await expect(splitSecret(secret, 5, NaN)).rejects.toThrow(/CONFIG_UNSAFE/);
    await expect(splitSecret(secret, 256, 3)).rejects.toThrow(/CONFIG_UNSAFE/);
    await expect(splitSecret(secret, 5, 1)).rejects.toThrow(/CONFIG_UNSAFE/);
    await expect(splitSecret(secret, 3, 4)).rejects.toThrow(/CONFIG_UNSAFE/);
    await expect(splitSecret(new Uint8Array(16), 5, 3)).rejects.toThrow(/32 bytes/);
  });
});
