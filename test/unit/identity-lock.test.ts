import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IdentityLock } from '../../client-node/identity-lock';
import {
  lockClientIdentity,
  lockHolder,
  lockPathOf,
  numberedIdentityPath,
  tryLockIdentity,
} from '../../client-node/identity-lock';
import { isCohortError } from '../../shared/errors';

/**
 * One process per identity file on a machine: the lock that keeps three `cohort client`
 * processes started with the same command from sharing ~/.cohort/identity.json.
 */

let dir: string;
let locks: IdentityLock[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-identity-lock-'));
});
afterEach(() => {
  for (const lock of locks) lock.release();
  locks = [];
  rmSync(dir, { recursive: true, force: true });
});

const hold = (lock: IdentityLock | null): IdentityLock => {
  expect(lock).not.toBeNull();
  locks.push(lock!);
  return lock!;
};

describe('identity lock', () => {
  it('numbers fallback identities next to the default one', () => {
    expect(numberedIdentityPath('/h/.cohort/identity.json', 2)).toBe('/h/.cohort/identity-2.json');
    expect(numberedIdentityPath('/h/keys/alice', 3)).toBe('/h/keys/alice-3');
  });

  it('a held lock names its process; released, it is free again', () => {
    const path = join(dir, 'identity.json');
    const lock = hold(tryLockIdentity(path));
    expect(lockHolder(path)).toBe(process.pid);
    expect(tryLockIdentity(path)).toBeNull();
    lock.release();
    expect(existsSync(lockPathOf(path))).toBe(false);
    expect(lockHolder(path)).toBeNull();
    hold(tryLockIdentity(path));
  });

  it('the default identity, when held, falls back to the next free numbered one and says so', () => {
    const path = join(dir, 'identity.json');
    const notes: string[] = [];
    const taken = [1, 2, 3].map(() =>
      hold(lockClientIdentity(path, { explicit: false, note: (l) => notes.push(l) })),
    );
    expect(taken.map((l) => l.identityPath)).toEqual([
      path,
      join(dir, 'identity-2.json'),
      join(dir, 'identity-3.json'),
    ]);
    expect(notes).toHaveLength(2);
    expect(notes[0]).toMatch(new RegExp(`in use by process ${process.pid}.*identity-2\\.json`));
    expect(notes[0]).toMatch(/--identity/);
    // A freed slot is reused before a new one is made.
    taken[1]!.release();
    expect(hold(lockClientIdentity(path, { explicit: false })).identityPath).toBe(
      join(dir, 'identity-2.json'),
    );
  });

  it('an identity named with --identity is refused when held, naming --identity', () => {
    const path = join(dir, 'alice.json');
    hold(lockClientIdentity(path, { explicit: true }));
    let error: unknown;
    try {
      lockClientIdentity(path, { explicit: true });
    } catch (e) {
      error = e;
    }
    expect(isCohortError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/in use by process \d+.*--identity/);
  });

  it('a lock left by a process that is gone is taken over', () => {
    const path = join(dir, 'identity.json');
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(gone.stdout.toString());
    expect(deadPid).toBeGreaterThan(0);
    writeFileSync(lockPathOf(path), `${deadPid}\n`);
    expect(lockHolder(path)).toBeNull();
    expect(hold(lockClientIdentity(path, { explicit: true })).identityPath).toBe(path);
    expect(lockHolder(path)).toBe(process.pid);
    // A garbled lock file is stale too.
    const other = join(dir, 'other.json');
    writeFileSync(lockPathOf(other), 'not a pid');
    expect(hold(tryLockIdentity(other)).identityPath).toBe(other);
  });
});
