import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CohortError } from '../shared/errors';
import type { Logger } from './logger';

/** A secret token: 16 to 256 printable characters, no spaces (the options table's rule). */
export const TOKEN_PATTERN = /^[\x21-\x7e]{16,256}$/;
export const TOKEN_PATTERN_HELP = '16 to 256 printable characters without spaces';

/** What a token file is for, in the words its messages use. */
export interface TokenFileRole {
  /** e.g. 'join token', 'admin token'. */
  what: string;
  /** Who should get the token, said when a file is created. */
  giveTo: string;
}

/** Throws CONFIG_INVALID naming `source` unless `token` is a usable token. */
export function checkToken(token: string, what: string, source: string): void {
  if (!TOKEN_PATTERN.test(token)) {
    throw new CohortError('CONFIG_INVALID', `${what} in ${source}: ${TOKEN_PATTERN_HELP}`);
  }
}

/**
 * Reads a token file, or creates one (owner-only, in an owner-only folder) holding a fresh
 * 256-bit random token. Tokens are secrets: the messages name the file, never its content.
 */
export async function readOrCreateTokenFile(
  path: string,
  role: TokenFileRole,
  log: Logger,
): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CohortError(
        'CONFIG_INVALID',
        `cannot read ${role.what} file ${path}: ${(error as Error).message}`,
      );
    }
    const token = randomBytes(32).toString('base64url');
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(path, token + '\n', { mode: 0o600, flag: 'wx' });
    await chmod(path, 0o600);
    log.info(`created ${role.what} file ${path}: ${role.giveTo}`);
    return token;
  }
  const token = text.trim();
  checkToken(token, role.what, path);
  if (((await stat(path)).mode & 0o077) !== 0) {
    log.warn(`${role.what} file ${path} is readable by other users: chmod 600 it`);
  }
  return token;
}

/**
 * A token given directly or through its file (read, or created when missing); null when the
 * option is not set. The one way every coordinator token option is resolved.
 */
export async function resolveToken(
  value: string | undefined,
  file: string | undefined,
  role: TokenFileRole,
  log: Logger,
): Promise<string | null> {
  if (value !== undefined) return value;
  return file !== undefined ? readOrCreateTokenFile(file, role, log) : null;
}
