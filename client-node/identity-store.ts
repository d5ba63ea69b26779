import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CohortError } from '../shared/errors';
import type { IdentityKeyPair } from '../shared/identity';
import { fromHex, generateIdentity, identityFromSecretKey, toHex } from '../shared/identity';

/** Where a Node client keeps its long-term identity unless told otherwise. */
export function defaultIdentityPath(): string {
  return join(homedir(), '.cohort', 'identity.json');
}

/**
 * Loads the client's long-term Ed25519 identity, creating it on first run. The file holds the
 * secret key, so it is written owner-only (0600, directory 0700) and refused if unreadable.
 */
export async function loadOrCreateIdentity(
  path: string,
): Promise<{ identity: IdentityKeyPair; created: boolean }> {
  let text: string | null = null;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CohortError(
        'AUTH_FAILED',
        `cannot read identity ${path}: ${(error as Error).message}`,
      );
    }
  }
  if (text !== null) {
    try {
      const parsed = JSON.parse(text) as { secretKey?: unknown };
      if (typeof parsed.secretKey !== 'string') throw new Error('no secretKey');
      return { identity: identityFromSecretKey(fromHex(parsed.secretKey)), created: false };
    } catch (error) {
      throw new CohortError(
        'AUTH_FAILED',
        `identity file ${path} is corrupt: ${(error as Error).message}`,
      );
    }
  }
  const identity = generateIdentity();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const body = JSON.stringify(
    { version: 1, publicKey: toHex(identity.publicKey), secretKey: toHex(identity.secretKey) },
    null,
    2,
  );
  await writeFile(path, body + '\n', { mode: 0o600, flag: 'wx' });
  await chmod(path, 0o600);
  return { identity, created: true };
}
