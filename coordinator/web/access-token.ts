import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * Whether `given` is `expected`, in time independent of where they differ and of their
 * lengths: both are hashed first, so the comparison always runs over 32 bytes and an attacker
 * timing responses learns nothing about the token, not even its length.
 */
export function tokensMatch(given: string | undefined, expected: string): boolean {
  const a = createHash('sha256')
    .update(given ?? '')
    .digest();
  const b = createHash('sha256').update(expected).digest();
  // Evaluated in full even for a missing token, so "absent" and "wrong" cost the same.
  const same = timingSafeEqual(a, b);
  return given !== undefined && same;
}

/** The token of an `Authorization: Bearer <token>` header, if there is one. */
export function bearerTokenOf(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
