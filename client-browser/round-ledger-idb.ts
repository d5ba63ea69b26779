import { CohortError } from '../shared/errors';
import type { RoundLedger } from '../shared/secagg/round-ledger';

/** The tab's IndexedDB database: its identity keys and its round ledgers. */
export const COHORT_DB = 'cohort';
/** Long-term identities, one record per identity slot. */
export const IDENTITY_STORE = 'identity';
/** Round ledgers: keys `[owner, roundKey]`, owner = the client id the ledger belongs to. */
export const ROUNDS_STORE = 'rounds';
const DB_VERSION = 1;

/**
 * Opens (creating on first use) the `cohort` database. The schema of both stores lives here,
 * in one place, because IndexedDB versions the whole database at once.
 */
export function openCohortDatabase(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    if (typeof indexedDB === 'undefined') {
      reject(new CohortError('CONFIG_INVALID', 'this browser has no IndexedDB (private mode?)'));
      return;
    }
    const request = indexedDB.open(COHORT_DB, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains(IDENTITY_STORE)) db.createObjectStore(IDENTITY_STORE);
      if (!db.objectStoreNames.contains(ROUNDS_STORE)) db.createObjectStore(ROUNDS_STORE);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(databaseError('open', request.error));
    request.onblocked = () =>
      reject(
        new CohortError(
          'CONFIG_INVALID',
          'the Cohort database is held open by an older tab of this site: close it and reload',
        ),
      );
  });
}

/**
 * Runs `work` in one transaction and resolves with its result once the transaction has
 * committed; readwrite transactions ask for strict durability (flushed to disk), which is
 * what a round ledger needs before the client reveals shares.
 */
export function inTransaction<T>(
  db: IDBDatabase,
  store: string,
  mode: IDBTransactionMode,
  work: (store: IDBObjectStore) => IDBRequest<T> | void,
): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    const tx =
      mode === 'readwrite'
        ? db.transaction(store, mode, { durability: 'strict' })
        : db.transaction(store, mode);
    const request = work(tx.objectStore(store));
    tx.oncomplete = () => resolve(request ? request.result : undefined);
    tx.onerror = () => reject(databaseError(mode, tx.error));
    tx.onabort = () => reject(databaseError(mode, tx.error));
  });
}

function databaseError(what: string, error: DOMException | null): CohortError {
  return new CohortError(
    'CONFIG_INVALID',
    `IndexedDB ${what} failed: ${error?.message ?? 'unknown error'} (storage full or blocked?)`,
  );
}

/**
 * A {@link RoundLedger} in IndexedDB, scoped to one identity: the ids of secure rounds in
 * which this tab revealed shares survive a reload, so a coordinator that reloads the page (or
 * replays an ended round) cannot obtain a second set of shares. `record` resolves only after
 * its transaction committed with strict durability.
 */
export class IndexedDbRoundLedger implements RoundLedger {
  /** Keys recorded by this tab, so repeated checks need no database round trip. */
  private readonly known = new Set<string>();

  constructor(
    private readonly db: IDBDatabase,
    /** Whose ledger this is (the client id): a reset identity takes its ledger with it. */
    private readonly owner: string,
  ) {}

  async has(key: string): Promise<boolean> {
    if (this.known.has(key)) return true;
    const found = await inTransaction(this.db, ROUNDS_STORE, 'readonly', (store) =>
      store.count([this.owner, key]),
    );
    if (found !== undefined && found > 0) this.known.add(key);
    return this.known.has(key);
  }

  async record(key: string): Promise<void> {
    if (key === '') throw new CohortError('INTERNAL', 'a round ledger key must not be empty');
    await inTransaction(this.db, ROUNDS_STORE, 'readwrite', (store) =>
      store.put(Date.now(), [this.owner, key]),
    );
    this.known.add(key);
  }
}

/** Deletes every ledger entry of `owner` (with its identity, on "Reset identity"). */
export async function deleteRoundLedger(db: IDBDatabase, owner: string): Promise<void> {
  // Array keys sort after strings, so [owner, []] bounds every [owner, <string>].
  await inTransaction(db, ROUNDS_STORE, 'readwrite', (store) =>
    store.delete(IDBKeyRange.bound([owner], [owner, []])),
  );
}
