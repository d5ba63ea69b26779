import { toHex } from '../bytes';
import { CohortError } from '../errors';
import { clientIdFromPublicKey } from '../identity';
import { verifySignature } from './crypto-primitives';
import { bytesEqual } from './encoding';
import type { NeighbourGraph } from './graph';
import { assertSortedUnique } from './graph';
import type { AdvertisedKeys, SurvivorSignature, UnmaskingRequest } from './messages';
import type { RoundContext } from './signed-payloads';
import { advertisementBytes } from './signed-payloads';

/**
 * The checks an honest client runs on what the coordinator tells it, kept apart from the
 * session's state machine so each rule reads as one function. Every failure is a CohortError
 * naming the misbehaviour, raised before the client reveals anything.
 */

/**
 * Decides whether an identity key may speak for a client id: the id must be the hash of the
 * key (so the coordinator cannot swap keys under a real id), the key must be pinned when the
 * deployment pins identities (so it cannot invent clients), and a client's key must not
 * change within the round.
 */
export class IdentityChecker {
  private readonly pinned: Set<string> | undefined;

  constructor(knownIdentityKeys?: Iterable<Uint8Array>) {
    this.pinned = knownIdentityKeys
      ? new Set([...knownIdentityKeys].map((k) => toHex(k)))
      : undefined;
  }

  /** Throws SECAGG_SIGNATURE unless `identityPublicKey` may speak for `clientId`. */
  check(clientId: string, identityPublicKey: Uint8Array, seenBefore?: Uint8Array): void {
    if (clientIdFromPublicKey(identityPublicKey) !== clientId) {
      throw new CohortError('SECAGG_SIGNATURE', `identity key does not belong to ${clientId}`);
    }
    if (this.pinned && !this.pinned.has(toHex(identityPublicKey))) {
      throw new CohortError('SECAGG_SIGNATURE', `${clientId} is not a known identity`);
    }
    if (seenBefore && !bytesEqual(seenBefore, identityPublicKey)) {
      throw new CohortError(
        'SECAGG_SIGNATURE',
        `identity key of ${clientId} changed during the round`,
      );
    }
  }

  /** Throws SECAGG_SIGNATURE unless the advertised keys are signed by the client's identity. */
  async verifyAdvertisement(entry: AdvertisedKeys, ctx: RoundContext): Promise<void> {
    this.check(entry.clientId, entry.identityPublicKey);
    const message = advertisementBytes(ctx, entry.clientId, entry.cPublicKey, entry.sPublicKey);
    if (!(await verifySignature(message, entry.signature, entry.identityPublicKey))) {
      throw new CohortError(
        'SECAGG_SIGNATURE',
        `keys of ${entry.clientId} are not signed by its identity`,
      );
    }
  }
}

/** A list of ids must name `self` (SECAGG_INCONSISTENT) and hold at least t (SECAGG_BELOW_THRESHOLD). */
export function assertMembership(
  ids: readonly string[],
  self: string,
  threshold: number,
  what: string,
): void {
  if (!ids.includes(self)) {
    throw new CohortError('SECAGG_INCONSISTENT', `${what} do not include this client`);
  }
  if (ids.length < threshold) {
    throw new CohortError(
      'SECAGG_BELOW_THRESHOLD',
      `${ids.length} ${what}, threshold is ${threshold}`,
    );
  }
}

/** Lists only shrink during a round: anyone new is SECAGG_INCONSISTENT. */
export function assertSubset(
  ids: readonly string[],
  earlier: ReadonlySet<string>,
  what: string,
): void {
  for (const id of ids) {
    if (!earlier.has(id)) {
      throw new CohortError('SECAGG_INCONSISTENT', `${what} include ${id}, absent before`);
    }
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

/**
 * The lists of an Unmasking request: survivors exactly as this client signed them, dropped
 * exactly the key sharers minus the survivors (so nobody is both alive and dead), signers
 * distinct survivors and at least t of them. Returns the survivors as a set.
 */
export function checkUnmaskingLists(
  req: UnmaskingRequest,
  signedSurvivors: readonly string[],
  keySharers: ReadonlySet<string>,
  threshold: number,
): Set<string> {
  if (!sameList(req.survivors, signedSurvivors)) {
    throw new CohortError(
      'SECAGG_INCONSISTENT',
      'survivor list differs from the one this client signed',
    );
  }
  const alive = new Set(signedSurvivors);
  assertSortedUnique(req.dropped, 'dropped');
  if (req.dropped.some((id) => alive.has(id))) {
    throw new CohortError('SECAGG_INCONSISTENT', 'a client is listed as both alive and dead');
  }
  const expectedDropped = [...keySharers].filter((id) => !alive.has(id)).sort();
  if (!sameList(req.dropped, expectedDropped)) {
    throw new CohortError(
      'SECAGG_INCONSISTENT',
      'dropped list is not the key sharers minus the survivors',
    );
  }
  const signers = new Set<string>();
  for (const s of req.signatures) {
    if (!alive.has(s.clientId) || signers.has(s.clientId)) {
      throw new CohortError(
        'SECAGG_INCONSISTENT',
        `signature from non-survivor or repeated ${s.clientId}`,
      );
    }
    signers.add(s.clientId);
  }
  if (signers.size < threshold) {
    throw new CohortError(
      'SECAGG_BELOW_THRESHOLD',
      `${signers.size} survivors signed, ${threshold} needed`,
    );
  }
  return alive;
}

/**
 * Verifies the consistency signatures that matter to this client (those of share holders of
 * the clients whose shares it holds; others cannot affect what it reveals) and requires, for
 * every such owner, at least t holders who signed the same list. With t above half of each
 * holder set, two honest holders can then never have accepted different lists, so no owner
 * is treated as alive by some holders and dead by others. Returns nothing; throws
 * SECAGG_SIGNATURE on any bad signature, SECAGG_BELOW_THRESHOLD on too few confirmations.
 */
export async function checkSurvivorConfirmations(options: {
  signatures: readonly SurvivorSignature[];
  owners: readonly string[];
  graph: NeighbourGraph;
  message: Uint8Array;
  threshold: number;
  identities: IdentityChecker;
  knownIdentityKey: (clientId: string) => Uint8Array | undefined;
}): Promise<void> {
  const { graph, owners, threshold } = options;
  const relevant = new Set<string>();
  for (const owner of owners) for (const h of graph.holdersOf(owner)) relevant.add(h);
  const checked = options.signatures.filter((s) => relevant.has(s.clientId));
  for (const s of checked) {
    options.identities.check(s.clientId, s.identityPublicKey, options.knownIdentityKey(s.clientId));
  }
  const valid = await Promise.all(
    checked.map((s) => verifySignature(options.message, s.signature, s.identityPublicKey)),
  );
  const bad = checked.find((_s, i) => !valid[i]);
  if (bad) {
    throw new CohortError(
      'SECAGG_SIGNATURE',
      `consistency signature of ${bad.clientId} does not verify`,
    );
  }
  const verified = new Set(checked.map((s) => s.clientId));
  for (const owner of owners) {
    const confirmed = graph.holdersOf(owner).filter((h) => verified.has(h)).length;
    if (confirmed < threshold) {
      throw new CohortError(
        'SECAGG_BELOW_THRESHOLD',
        `only ${confirmed} share holders of ${owner} confirmed the survivor list, ${threshold} needed`,
      );
    }
  }
}
