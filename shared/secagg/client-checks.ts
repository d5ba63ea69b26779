import { toHex } from '../bytes';
import { CohortError } from '../errors';
import { clientIdFromPublicKey } from '../identity';
import { verifyCertificate } from '../registrar';
import { verifySignature } from './crypto-primitives';
import { assertSortedUnique } from './graph';
import type { AdvertisedKeys, SurvivorSignature, UnmaskingRequest } from './messages';
import type { RoundView } from './round-view';
import type { RoundContext } from './signed-payloads';
import { advertisementBytes } from './signed-payloads';

/**
 * The checks an honest client runs on what the coordinator tells it, kept apart from the
 * session's state machine so each rule reads as one function. Every failure is a CohortError
 * naming the misbehaviour, raised before the client reveals anything.
 */

/**
 * Decides whether an identity key may speak for a client id: the id must be the hash of the
 * key (so the coordinator cannot swap keys under a real id) and, when the deployment pins
 * identities, the key must be pinned (so it cannot invent clients).
 */
export class IdentityChecker {
  private readonly pinned: Set<string> | undefined;

  constructor(
    knownIdentityKeys?: Iterable<Uint8Array>,
    private readonly registrarKey?: Uint8Array,
  ) {
    this.pinned = knownIdentityKeys
      ? new Set([...knownIdentityKeys].map((k) => toHex(k)))
      : undefined;
  }

  /** Throws SECAGG_SIGNATURE unless `identityPublicKey` may speak for `clientId`. */
  check(clientId: string, identityPublicKey: Uint8Array): void {
    if (clientIdFromPublicKey(identityPublicKey) !== clientId) {
      throw new CohortError('SECAGG_SIGNATURE', `identity key does not belong to ${clientId}`);
    }
    if (this.pinned && !this.pinned.has(toHex(identityPublicKey))) {
      throw new CohortError('SECAGG_SIGNATURE', `${clientId} is not a known identity`);
    }
  }

  /** Throws SECAGG_SIGNATURE unless the advertised keys are signed by the client's identity. */
  async verifyAdvertisement(entry: AdvertisedKeys, ctx: RoundContext): Promise<void> {
    this.check(entry.clientId, entry.identityPublicKey);
    if (
      this.registrarKey !== undefined &&
      !verifyCertificate(this.registrarKey, entry.identityPublicKey, entry.certificate)
    ) {
      throw new CohortError(
        'SECAGG_SIGNATURE',
        `${entry.clientId} has no certificate from the pinned registrar`,
      );
    }
    const message = advertisementBytes(ctx, entry.clientId, entry.cPublicKey, entry.sPublicKey);
    if (!(await verifySignature(message, entry.signature, entry.identityPublicKey))) {
      throw new CohortError(
        'SECAGG_SIGNATURE',
        `keys of ${entry.clientId} are not signed by its identity`,
      );
    }
  }
}

/** A list of ids must name `self` (SECAGG_INCONSISTENT). */
export function assertIncludesSelf(ids: readonly string[], self: string, what: string): void {
  if (!ids.includes(self)) {
    throw new CohortError('SECAGG_INCONSISTENT', `${what} do not include this client`);
  }
}

/**
 * At least t of a client's own share holders (itself and its neighbours) must be in `ids`
 * (SECAGG_BELOW_THRESHOLD). Counting the whole list is not enough: "t key sharers" is
 * worthless if none of them is my neighbour, since then my input carries only the self mask.
 */
export function assertNeighbourhood(
  ids: ReadonlySet<string>,
  holders: readonly string[],
  threshold: number,
  what: string,
): void {
  const present = holders.filter((h) => ids.has(h)).length;
  if (present < threshold) {
    throw new CohortError(
      'SECAGG_BELOW_THRESHOLD',
      `${present} of this client's ${holders.length} share holders are ${what}, threshold is ${threshold}`,
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
 * distinct survivors. Returns the survivors as a set.
 */
export function checkUnmaskingLists(
  req: UnmaskingRequest,
  signedSurvivors: readonly string[],
  keySharers: readonly string[],
): Set<string> {
  if (!sameList(req.survivors, signedSurvivors)) {
    throw new CohortError(
      'SECAGG_INCONSISTENT',
      'survivor list differs from the one this client signed',
    );
  }
  const alive = new Set(signedSurvivors);
  assertSortedUnique(req.dropped, 'dropped');
  // Stryker disable next-line ConditionalExpression,ArrowFunction,BlockStatement: redundant with the exact-list check below (the expected dropped list holds no survivor); kept for its clearer refusal.
  if (req.dropped.some((id) => alive.has(id))) {
    throw new CohortError('SECAGG_INCONSISTENT', 'a client is listed as both alive and dead');
  }
  const expectedDropped = keySharers.filter((id) => !alive.has(id));
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
  return alive;
}

/**
 * Verifies the consistency signatures that matter to this client (those of share holders of
 * the clients whose shares it holds) with the identity keys of the round view, and requires,
 * for every such owner, at least t holders who signed the same view, sharer list and
 * survivor list. Two groups of honest holders that accepted different lists would need
 * 2t <= m + c signers for c colluders, so with c < 2t - m no owner is treated as alive by some
 * holders and dead by others. Throws SECAGG_SIGNATURE on any bad signature,
 * SECAGG_BELOW_THRESHOLD on too few confirmations.
 */
export async function checkSurvivorConfirmations(options: {
  signatures: readonly SurvivorSignature[];
  owners: readonly string[];
  view: RoundView;
  message: Uint8Array;
}): Promise<void> {
  const { view, owners } = options;
  const { graph } = view;
  const threshold = view.params.threshold;
  const relevant = new Set<string>();
  for (const owner of owners) for (const h of graph.holdersOf(owner)) relevant.add(h);
  const checked = options.signatures.filter((s) => relevant.has(s.clientId));
  const valid = await Promise.all(
    checked.map((s) =>
      verifySignature(options.message, s.signature, view.keys.get(s.clientId)!.identityPublicKey),
    ),
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

/**
 * Before revealing a surviving owner's self-mask share, checks that the owner signed, with
 * its masked input, the very sharer list this client was shown. Revealing the self mask is
 * only safe if the owner masked with this client (and so with every holder that reveals); a
 * coordinator that showed the owner a smaller sharer set, to strip its pairwise masks by
 * declaring those sharers dead elsewhere, cannot produce that signature.
 */
export async function checkInputSignatures(options: {
  inputSignatures: readonly SurvivorSignature[];
  owners: readonly string[];
  view: RoundView;
  message: Uint8Array;
}): Promise<void> {
  const byId = new Map<string, Uint8Array>();
  for (const s of options.inputSignatures) {
    if (byId.has(s.clientId)) {
      throw new CohortError('SECAGG_INCONSISTENT', `repeated input signature of ${s.clientId}`);
    }
    byId.set(s.clientId, s.signature);
  }
  const results = await Promise.all(
    options.owners.map(async (owner) => {
      const signature = byId.get(owner);
      if (!signature) return { owner, ok: false as const, missing: true };
      const key = options.view.keys.get(owner)!.identityPublicKey;
      return { owner, ok: await verifySignature(options.message, signature, key), missing: false };
    }),
  );
  for (const r of results) {
    if (r.missing) {
      throw new CohortError(
        'SECAGG_INCONSISTENT',
        `no MaskedInput signature of survivor ${r.owner}: cannot tell what it masked with`,
      );
    }
    if (!r.ok) {
      throw new CohortError(
        'SECAGG_SIGNATURE',
        `survivor ${r.owner} masked against another sharer list than this client was shown`,
      );
    }
  }
}
