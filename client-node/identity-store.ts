import { fromHex, toHex } from '../shared/bytes';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CohortError } from '../shared/errors';
import type { IdentityKeyPair } from '../shared/identity';
import { generateIdentity, identityFromSecretKey } from '../shared/identity';
import { parsePublicKeyList } from '../shared/public-key-list';

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

/**
 * Reads pinned identity keys: one hex Ed25519 public key per line (`#` comments allowed).
 * A client given these refuses any secure round whose members are not all listed, so a
 * coordinator cannot invent clients to isolate it.
 */
export async function loadTrustedKeys(path: string): Promise<Uint8Array[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new CohortError(
      'CONFIG_INVALID',
      `cannot read trusted keys ${path}: ${(error as Error).message}`,
    );
  }
  return parsePublicKeyList(text, path).map(fromHex);
}

/** The hex public key of an identity, as listed in a trusted-keys file. */
export function publicKeyHex(identity: IdentityKeyPair): string {
  return toHex(identity.publicKey);
}
