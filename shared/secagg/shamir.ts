import { combine, split } from 'shamir-secret-sharing';
import { CohortError } from '../errors';

/**
 * Thin wrapper over the audited `shamir-secret-sharing` library (GF(256), byte-wise).
 *
 * How that library encodes x-coordinates: each share is the secret's length plus ONE byte, and
 * that last byte is the share's x-coordinate, drawn as a random permutation of 1..255 at split
 * time (not 1..n in order). So share j is not "the evaluation at x = j": a share is
 * self-describing, and any `threshold` distinct shares combine, in any order. We therefore map
 * holders to shares purely by position (holder j of the sorted holder list receives share j)
 * and never derive an x from a client index. Consequences enforced here: at most 255 shares,
 * threshold >= 2, shares of one secret must carry distinct x bytes, and the library checks
 * `share.constructor === Uint8Array`, so shares arriving as Node Buffers are copied first.
 */

/** Bytes of a share of a 32-byte secret: 32 value bytes + 1 x-coordinate byte. */
export const SHARE_LENGTH = 33;

/** Length of every secret the protocol shares (self-mask seeds and X25519 secret keys). */
export const SECRET_LENGTH = 32;

/** Splits a 32-byte secret into `holderCount` shares, any `threshold` of which rebuild it. */
export async function splitSecret(
  secret: Uint8Array,
  holderCount: number,
  threshold: number,
): Promise<Uint8Array[]> {
  if (secret.length !== SECRET_LENGTH) {
    throw new CohortError('INTERNAL', `secrets must be ${SECRET_LENGTH} bytes`);
  }
  if (
    !Number.isInteger(threshold) ||
    !Number.isInteger(holderCount) ||
    threshold < 2 ||
    holderCount < threshold ||
    holderCount > 255
  ) {
    throw new CohortError(
      'CONFIG_UNSAFE',
      `cannot split into ${holderCount} shares with threshold ${threshold} (need 2 <= t <= n <= 255)`,
    );
  }
  return split(new Uint8Array(secret), holderCount, threshold);
}

/**
 * Rebuilds a secret from at least `threshold` shares (exactly the first `threshold` distinct ones
 * are used: more cost quadratic time and add nothing when shares are honest). Fewer than
 * `threshold` distinct shares: SECAGG_BELOW_THRESHOLD, never a guess.
 */
export async function combineShares(
  shares: readonly Uint8Array[],
  threshold: number,
): Promise<Uint8Array> {
  const chosen: Uint8Array[] = [];
  const seenX = new Set<number>();
  for (const share of shares) {
    if (share.length !== SHARE_LENGTH) {
      throw new CohortError('MESSAGE_INVALID', `a share must be ${SHARE_LENGTH} bytes`);
    }
    const x = share[SHARE_LENGTH - 1]!;
    if (x === 0 || seenX.has(x)) continue;
    seenX.add(x);
    chosen.push(new Uint8Array(share));
    if (chosen.length === threshold) break;
  }
  if (chosen.length < threshold || threshold < 2) {
    throw new CohortError(
      'SECAGG_BELOW_THRESHOLD',
      `${chosen.length} distinct shares, ${threshold} needed to reconstruct`,
    );
  }
  return combine(chosen);
}
