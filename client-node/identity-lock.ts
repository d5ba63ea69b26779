import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { CohortError } from '../shared/errors';

/**
 * One process per identity on a machine. Two client processes with one identity would each
 * kick the other's connection off the coordinator; so each takes `<identity>.lock` (holding
 * its pid) for as long as it runs. A lock whose process is gone is stale and taken over.
 */

/** The lock file of an identity file. */
export function lockPathOf(identityPath: string): string {
  return `${identityPath}.lock`;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid holding `identityPath`'s lock, or null when it is free (or stale). */
export function lockHolder(identityPath: string): number | null {
  let text: string;
  try {
    text = readFileSync(lockPathOf(identityPath), 'utf8');
  } catch {
    return null;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  if (pid === process.pid) return pid;
  return processAlive(pid) ? pid : null;
}

/** A held lock: release it when done (it is also released when the process exits). */
export interface IdentityLock {
  readonly identityPath: string;
  release(): void;
}

/** Tries to take the lock; returns null when a live process holds it. */
export function tryLockIdentity(identityPath: string): IdentityLock | null {
  mkdirSync(dirname(identityPath), { recursive: true, mode: 0o700 });
  const lockPath = lockPathOf(identityPath);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.off('exit', release);
        try {
          unlinkSync(lockPath);
        } catch {
          // already gone
        }
      };
      process.on('exit', release);
      return { identityPath, release };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (lockHolder(identityPath) !== null) return null;
      // Stale: its process is gone. Remove it and try once more.
      try {
        unlinkSync(lockPath);
      } catch {
        // another process removed it first
      }
    }
  }
  return null;
}

/** `identity.json` → `identity-2.json`, `identity-3.json`, ... */
export function numberedIdentityPath(identityPath: string, n: number): string {
  const ext = extname(identityPath);
  return join(dirname(identityPath), `${basename(identityPath, ext)}-${n}${ext}`);
}

/** How many numbered identities a default identity may fall back to. */
export const MAX_LOCAL_IDENTITIES = 64;

/**
 * Locks the identity a client will use. An identity named with `--identity` is used or
 * refused (CONFIG_INVALID, naming the process that holds it); the default identity, when
 * another process on this machine holds it, falls back to the next free numbered one, so
 * several clients started with the same command join as distinct clients. `note` says
 * which one was taken when it was not the first.
 */
export function lockClientIdentity(
  identityPath: string,
  options: { explicit: boolean; note?: (line: string) => void },
): IdentityLock {
  const first = tryLockIdentity(identityPath);
  if (first) return first;
  const holder = lockHolder(identityPath);
  if (options.explicit) {
    throw new CohortError(
      'CONFIG_INVALID',
      `identity ${identityPath} is in use by process ${holder ?? '?'} on this machine: ` +
        'give each client its own --identity FILE',
    );
  }
  for (let n = 2; n <= MAX_LOCAL_IDENTITIES; n++) {
    const candidate = numberedIdentityPath(identityPath, n);
    const lock = tryLockIdentity(candidate);
    if (lock) {
      options.note?.(
        `identity ${identityPath} is in use by process ${holder ?? '?'}; using ${candidate} ` +
          '(pass --identity FILE to choose one)',
      );
      return lock;
    }
  }
  throw new CohortError(
    'CONFIG_INVALID',
    `${MAX_LOCAL_IDENTITIES} local identities next to ${identityPath} are in use: pass --identity FILE`,
  );
}
