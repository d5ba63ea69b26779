import { chmod, mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CohortError } from '../shared/errors';
import type { RoundLedger } from '../shared/secagg/round-ledger';

/** How many round keys a ledger file keeps at least (the newest ones). */
export const DEFAULT_LEDGER_CAP = 10_000;

/** Where the round ledger of an identity file lives: next to it, `<identity>.rounds`. */
export function roundLedgerPath(identityPath: string): string {
  return `${identityPath}.rounds`;
}

/**
 * A {@link RoundLedger} persisted in a file next to the client's identity: one key per line,
 * appended and fsync'ed before `record` resolves (the client reveals shares right after, so
 * a crash must not forget that it did), owner-only (0600). A missing file is an empty ledger.
 * The file keeps at least the newest `cap` keys: once it holds 10% more, it is rewritten
 * (to a temporary file, fsync'ed, then renamed over the old one) with the newest `cap`.
 */
export class FileRoundLedger implements RoundLedger {
  private keys: string[];
  private readonly known: Set<string>;
  /** Writes run one after the other, in call order. */
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    keys: string[],
    private readonly cap: number,
  ) {
    this.keys = keys;
    this.known = new Set(keys);
  }

  /** Loads the ledger at `path` (creating nothing until the first record). */
  static async open(path: string, options: { cap?: number } = {}): Promise<FileRoundLedger> {
    const cap = options.cap ?? DEFAULT_LEDGER_CAP;
    if (!Number.isSafeInteger(cap) || cap < 1) {
      throw new CohortError('CONFIG_INVALID', `round ledger cap must be a positive integer`);
    }
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new CohortError(
          'CONFIG_INVALID',
          `cannot read round ledger ${path}: ${(error as Error).message}`,
        );
      }
    }
    const keys = [
      ...new Set(
        text
          .split('\n')
          .map((line) => line.trim())
          .filter((line) => line !== ''),
      ),
    ];
    const ledger = new FileRoundLedger(path, keys, cap);
    if (text !== '') await chmod(path, 0o600);
    if (keys.length > ledger.compactAt) await ledger.enqueue(() => ledger.compact());
    return ledger;
  }

  /** Keys held right now (newest last); for tests and diagnostics. */
  get size(): number {
    return this.known.size;
  }

  has(key: string): Promise<boolean> {
    return Promise.resolve(this.known.has(key));
  }

  record(key: string): Promise<void> {
    if (key === '' || /[\r\n]/.test(key)) {
      return Promise.reject(
        new CohortError('INTERNAL', 'a round ledger key must be one non-empty line'),
      );
    }
    return this.enqueue(async () => {
      if (this.known.has(key)) return;
      await this.append(key);
      this.keys.push(key);
      this.known.add(key);
      if (this.keys.length > this.compactAt) await this.compact();
    });
  }

  private get compactAt(): number {
    return this.cap + Math.ceil(this.cap / 10);
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    // A failed write fails its own caller; the next one still runs.
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async append(key: string): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const handle = await open(this.path, 'a', 0o600);
    try {
      await handle.write(`${key}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Rewrites the file with the newest `cap` keys, atomically. */
  private async compact(): Promise<void> {
    const kept = this.keys.slice(-this.cap);
    const temporary = `${this.path}.tmp`;
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.write(kept.map((key) => `${key}\n`).join(''));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.path);
    await syncDirectory(dirname(this.path));
    for (const key of this.keys.slice(0, this.keys.length - kept.length)) this.known.delete(key);
    this.keys = kept;
  }
}

/** Makes a rename durable where the platform allows opening a directory (not on Windows). */
async function syncDirectory(path: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch {
    // Best effort: the data itself was fsync'ed before the rename.
  } finally {
    await handle?.close();
  }
}
