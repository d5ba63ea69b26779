import { utf8Bytes } from '../shared/bytes';
import { CohortError } from '../shared/errors';
import type { ExternalSigner, IdentityKeyPair, SigningIdentity } from '../shared/identity';
import {
  clientIdFromPublicKey,
  generateIdentity,
  identityFromSecretKey,
  verifyDetached,
} from '../shared/identity';
import { IDENTITY_STORE, deleteRoundLedger, inTransaction } from './round-ledger-idb';

/** How the tab's key is held: a non-extractable WebCrypto key, or tweetnacl bytes. */
export type IdentityKind = 'webcrypto' | 'tweetnacl';

/** The tab's long-term identity, loaded or created. */
export interface BrowserIdentity {
  identity: SigningIdentity;
  kind: IdentityKind;
  clientId: string;
  /** Which identity slot this tab holds (0 unless other tabs of this browser hold lower ones). */
  slot: number;
  created: boolean;
}

/** What an identity slot stores: the key pair object itself, or the tweetnacl secret key. */
type StoredIdentity =
  | { version: 1; kind: 'webcrypto'; keyPair: CryptoKeyPair; publicKey: Uint8Array }
  | { version: 1; kind: 'tweetnacl'; secretKey: Uint8Array };

/** Tabs of one browser profile share IndexedDB; each takes its own slot, up to this many. */
const MAX_SLOTS = 64;

/**
 * Claims the lowest identity slot no other tab of this browser holds, for this tab's whole
 * life (a Web Lock, released when the tab closes): the coordinator refuses two live
 * connections with one identity (IDENTITY_IN_USE), so a second tab joins as a second client,
 * as a second `cohort client` on one machine does. Slot 0 where Web Locks are unavailable.
 */
export async function claimIdentitySlot(): Promise<number> {
  if (!('locks' in navigator)) return 0;
  const locks = navigator.locks;
  for (let slot = 0; slot < MAX_SLOTS; slot++) {
    const claimed = await new Promise<boolean>((resolve, reject) => {
      locks
        .request(lockName(slot), { ifAvailable: true }, (lock) => {
          resolve(lock !== null);
          // Held until the tab goes away: the callback's promise never settles.
          return lock === null ? undefined : new Promise<void>(() => undefined);
        })
        .catch(reject);
    });
    if (claimed) return slot;
  }
  throw new CohortError(
    'IDENTITY_IN_USE',
    `${MAX_SLOTS} tabs of this browser already hold a Cohort identity: close some`,
  );
}

function lockName(slot: number): string {
  return `cohort-identity-${slot}`;
}

function recordKey(slot: number): string {
  return `slot-${slot}`;
}

/**
 * Loads the identity of `slot` from IndexedDB, creating it on first use. New identities are a
 * non-extractable WebCrypto Ed25519 key where the browser has one (the key pair object itself
 * is stored: structured cloning keeps it unreadable, so no script, ours included, can read
 * the secret key), checked once against tweetnacl's verifier; otherwise a tweetnacl key,
 * whose secret bytes IndexedDB then holds.
 */
export async function loadOrCreateBrowserIdentity(
  db: IDBDatabase,
  slot: number,
): Promise<BrowserIdentity> {
  const stored = await inTransaction<unknown>(db, IDENTITY_STORE, 'readonly', (store) =>
    store.get(recordKey(slot)),
  );
  if (stored !== undefined) {
    const loaded = fromStored(stored);
    return {
      ...loaded,
      clientId: clientIdFromPublicKey(loaded.identity.publicKey),
      slot,
      created: false,
    };
  }
  const record = (await createWebCryptoRecord()) ?? {
    version: 1 as const,
    kind: 'tweetnacl' as const,
    secretKey: generateIdentity().secretKey,
  };
  await inTransaction(db, IDENTITY_STORE, 'readwrite', (store) =>
    store.add(record, recordKey(slot)),
  );
  const created = fromStored(record);
  // Ask the browser not to evict the identity under storage pressure (best effort).
  void navigator.storage?.persist?.().catch(() => false);
  return {
    ...created,
    clientId: clientIdFromPublicKey(created.identity.publicKey),
    slot,
    created: true,
  };
}

/** Deletes the identity of `slot` and its round ledger (the page reloads afterwards). */
export async function resetBrowserIdentity(
  db: IDBDatabase,
  identity: BrowserIdentity,
): Promise<void> {
  await deleteRoundLedger(db, identity.clientId);
  await inTransaction(db, IDENTITY_STORE, 'readwrite', (store) =>
    store.delete(recordKey(identity.slot)),
  );
}

/**
 * A new non-extractable WebCrypto Ed25519 key pair, or null where the browser lacks Ed25519
 * or its signatures do not verify under tweetnacl (the coordinator verifies the same way).
 */
async function createWebCryptoRecord(): Promise<StoredIdentity | null> {
  try {
    const keyPair = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
    const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', keyPair.publicKey));
    const probe = utf8Bytes('cohort identity self-check');
    const signature = await webCryptoSign(keyPair.privateKey, probe);
    if (!verifyDetached(probe, signature, publicKey)) return null;
    return { version: 1, kind: 'webcrypto', keyPair, publicKey };
  } catch {
    return null;
  }
}

function webCryptoSign(privateKey: CryptoKey, message: Uint8Array): Promise<Uint8Array> {
  // A copy: WebCrypto takes ArrayBuffer-backed views only.
  return crypto.subtle
    .sign('Ed25519', privateKey, new Uint8Array(message))
    .then((signature) => new Uint8Array(signature));
}

function fromStored(value: unknown): { identity: SigningIdentity; kind: IdentityKind } {
  const record = value as Partial<Record<string, unknown>> | null;
  if (record?.kind === 'webcrypto') {
    const keyPair = record.keyPair as Partial<CryptoKeyPair> | undefined;
    const publicKey = record.publicKey;
    if (
      keyPair?.privateKey instanceof CryptoKey &&
      publicKey instanceof Uint8Array &&
      publicKey.length === 32
    ) {
      const privateKey = keyPair.privateKey;
      const signer: ExternalSigner = {
        publicKey,
        sign: (message) => webCryptoSign(privateKey, message),
      };
      return { identity: signer, kind: 'webcrypto' };
    }
  } else if (record?.kind === 'tweetnacl' && record.secretKey instanceof Uint8Array) {
    const identity: IdentityKeyPair = identityFromSecretKey(record.secretKey);
    return { identity, kind: 'tweetnacl' };
  }
  throw new CohortError(
    'AUTH_FAILED',
    'the identity stored in this browser is unreadable: use "Reset identity" to make a new one',
  );
}
