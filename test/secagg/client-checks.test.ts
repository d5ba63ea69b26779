import { isCohortError } from '../../shared/errors';
import type { IdentityKeyPair } from '../../shared/identity';
import { clientIdFromPublicKey, generateIdentity, signDetached } from '../../shared/identity';
import type {
  AdvertisedKeys,
  RoundView,
  SurvivorSignature,
  UnmaskingRequest,
} from '../../shared/secagg';
import { buildNeighbourGraph, graphSeed } from '../../shared/secagg';
import {
  IdentityChecker,
  assertIncludesSelf,
  assertNeighbourhood,
  assertSubset,
  checkInputSignatures,
  checkSurvivorConfirmations,
  checkUnmaskingLists,
} from '../../shared/secagg/client-checks';
import { advertisementBytes } from '../../shared/secagg/signed-payloads';
import type { RoundContext } from '../../shared/secagg/signed-payloads';

/**
 * The rules an honest client applies to what the coordinator tells it, one function at a
 * time and on a sparse neighbour graph (12 clients, k = 4, t = 3), where "t of the list" and
 * "t of my own share holders" differ. The whole-round attacks that exercise the same rules
 * through real sessions are in active-coordinator*.test.ts and adversarial.test.ts; these
 * are the fast, exact boundaries.
 */

const CTX: RoundContext = {
  coordinatorId: 'c'.repeat(32),
  experiment: 'checks',
  roundId: 'r-checks',
  modelHash: 'ab'.repeat(32),
  configHash: 'cd'.repeat(32),
};

const people: IdentityKeyPair[] = Array.from({ length: 12 }, () => generateIdentity());
const idOf = (p: IdentityKeyPair): string => clientIdFromPublicKey(p.publicKey);
const byId = new Map(people.map((p) => [idOf(p), p] as const));
const ids = [...byId.keys()].sort();
const THRESHOLD = 3;

function advertisement(person: IdentityKeyPair): AdvertisedKeys {
  const clientId = idOf(person);
  const cPublicKey = new Uint8Array(32).fill(ids.indexOf(clientId) + 1);
  const sPublicKey = new Uint8Array(32).fill(ids.indexOf(clientId) + 101);
  return {
    clientId,
    identityPublicKey: person.publicKey,
    cPublicKey,
    sPublicKey,
    signature: signDetached(advertisementBytes(CTX, clientId, cPublicKey, sPublicKey), person),
  };
}

const view: RoundView = {
  ctx: CTX,
  hash: new Uint8Array(32).fill(7),
  participants: ids,
  keys: new Map(ids.map((id) => [id, advertisement(byId.get(id)!)] as const)),
  params: {
    participants: ids.length,
    neighbours: 4,
    complete: false,
    holders: 5,
    threshold: THRESHOLD,
    maxColluders: 0,
  },
  graph: buildNeighbourGraph(ids, 4, graphSeed(new Uint8Array(32).fill(7))),
};

const MESSAGE = new TextEncoder().encode('survivor list of r-checks');
const sign = (id: string, message = MESSAGE): SurvivorSignature => ({
  clientId: id,
  signature: signDetached(message, byId.get(id)!),
});

/** The CohortError code an action throws, 'none' when it returns, else what it threw. */
function codeOf(action: () => unknown): unknown {
  try {
    action();
    return 'none';
  } catch (error) {
    return isCohortError(error) ? error.code : error;
  }
}

async function asyncCodeOf(action: () => Promise<unknown>): Promise<unknown> {
  try {
    await action();
    return 'none';
  } catch (error) {
    return isCohortError(error) ? error.code : error;
  }
}

const OWNER = ids[0]!;
const holdersOfOwner = view.graph.holdersOf(OWNER);
const strangers = ids.filter((id) => !holdersOfOwner.includes(id));

describe('the sparse graph the checks are judged on', () => {
  it('gives each client 5 holders (itself and 4 neighbours) and leaves 7 strangers', () => {
    expect(holdersOfOwner).toHaveLength(5);
    expect(holdersOfOwner).toContain(OWNER);
    expect(strangers).toHaveLength(7);
  });
});

describe('IdentityChecker', () => {
  const [alice, bob] = [people[0]!, people[1]!];

  it('accepts a key whose hash is the id, and refuses another key under that id', () => {
    const checker = new IdentityChecker();
    expect(codeOf(() => checker.check(idOf(alice), alice.publicKey))).toBe('none');
    expect(codeOf(() => checker.check(idOf(alice), bob.publicKey))).toBe('SECAGG_SIGNATURE');
  });

  it('with pinned keys, refuses a well-formed identity that is not pinned', () => {
    const checker = new IdentityChecker([alice.publicKey]);
    expect(codeOf(() => checker.check(idOf(alice), alice.publicKey))).toBe('none');
    expect(codeOf(() => checker.check(idOf(bob), bob.publicKey))).toBe('SECAGG_SIGNATURE');
    // An empty pin list pins nobody in, rather than turning pinning off.
    expect(codeOf(() => new IdentityChecker([]).check(idOf(alice), alice.publicKey))).toBe(
      'SECAGG_SIGNATURE',
    );
  });

  it('verifies an advertisement signed by its identity and refuses one whose keys were swapped', async () => {
    const checker = new IdentityChecker();
    const good = view.keys.get(idOf(alice))!;
    expect(await asyncCodeOf(() => checker.verifyAdvertisement(good, CTX))).toBe('none');
    const swapped = { ...good, sPublicKey: new Uint8Array(32).fill(250) };
    expect(await asyncCodeOf(() => checker.verifyAdvertisement(swapped, CTX))).toBe(
      'SECAGG_SIGNATURE',
    );
    const otherRound = { ...CTX, roundId: 'r-other' };
    expect(await asyncCodeOf(() => checker.verifyAdvertisement(good, otherRound))).toBe(
      'SECAGG_SIGNATURE',
    );
    const foreignKey = { ...good, identityPublicKey: bob.publicKey };
    expect(await asyncCodeOf(() => checker.verifyAdvertisement(foreignKey, CTX))).toBe(
      'SECAGG_SIGNATURE',
    );
  });
});

describe('list rules', () => {
  it('a list must name the client itself', () => {
    expect(codeOf(() => assertIncludesSelf(ids, OWNER, 'sharers'))).toBe('none');
    expect(codeOf(() => assertIncludesSelf(ids.slice(1), OWNER, 'sharers'))).toBe(
      'SECAGG_INCONSISTENT',
    );
  });

  it('counts only the client’s own holders against t, not the whole list', () => {
    const own = (n: number) => holdersOfOwner.slice(0, n);
    // Exactly t of its own holders passes; t - 1 fails however many strangers come along.
    expect(codeOf(() => assertNeighbourhood(new Set(own(3)), holdersOfOwner, 3, 'x'))).toBe('none');
    expect(
      codeOf(() => assertNeighbourhood(new Set([...own(2), ...strangers]), holdersOfOwner, 3, 'x')),
    ).toBe('SECAGG_BELOW_THRESHOLD');
    expect(codeOf(() => assertNeighbourhood(new Set(strangers), holdersOfOwner, 3, 'x'))).toBe(
      'SECAGG_BELOW_THRESHOLD',
    );
  });

  it('lists only shrink: a subset passes, anyone new is refused', () => {
    const earlier = new Set(ids.slice(0, 6));
    expect(codeOf(() => assertSubset(ids.slice(1, 5), earlier, 'survivors'))).toBe('none');
    expect(codeOf(() => assertSubset([], earlier, 'survivors'))).toBe('none');
    expect(codeOf(() => assertSubset([ids[1]!, ids[7]!], earlier, 'survivors'))).toBe(
      'SECAGG_INCONSISTENT',
    );
  });
});

describe('checkUnmaskingLists', () => {
  const sharers = ids.slice(0, 8);
  const survivors = sharers.slice(0, 6);
  const dropped = sharers.slice(6);
  const request = (over: Partial<UnmaskingRequest> = {}): UnmaskingRequest => ({
    roundId: CTX.roundId,
    survivors,
    dropped,
    signatures: survivors.map((id) => sign(id)),
    inputSignatures: [],
    ...over,
  });
  const check = (r: UnmaskingRequest) => () => checkUnmaskingLists(r, survivors, sharers);

  it('returns the survivors when the lists are the signed ones and the sharers minus them', () => {
    expect([...checkUnmaskingLists(request(), survivors, sharers)]).toEqual(survivors);
    expect(codeOf(check(request({ signatures: [] })))).toBe('none');
  });

  it('refuses a survivor list other than the signed one (shorter, longer, reordered)', () => {
    for (const other of [
      survivors.slice(1),
      [...survivors, sharers[6]!],
      [...survivors].reverse(),
      [...survivors.slice(0, 5), sharers[6]!],
    ]) {
      expect(codeOf(check(request({ survivors: other })))).toBe('SECAGG_INCONSISTENT');
    }
  });

  it('refuses a dropped list that is not exactly the sharers minus the survivors', () => {
    expect(codeOf(check(request({ dropped: dropped.slice(1) })))).toBe('SECAGG_INCONSISTENT');
    expect(codeOf(check(request({ dropped: [...dropped, ids[9]!] })))).toBe('SECAGG_INCONSISTENT');
    expect(codeOf(check(request({ dropped: [] })))).toBe('SECAGG_INCONSISTENT');
    // Alive and dead at once, even when the list is otherwise sorted and unique.
    expect(codeOf(check(request({ dropped: [survivors[0]!, ...dropped].sort() })))).toBe(
      'SECAGG_INCONSISTENT',
    );
    // Unsorted dropped lists are malformed.
    expect(codeOf(check(request({ dropped: [...dropped].reverse() })))).toBe('MESSAGE_INVALID');
    expect(() => check(request({ dropped: [...dropped].reverse() }))()).toThrow(/dropped/);
  });

  it('refuses signatures of non-survivors and repeated signers', () => {
    expect(codeOf(check(request({ signatures: [sign(dropped[0]!)] })))).toBe('SECAGG_INCONSISTENT');
    expect(codeOf(check(request({ signatures: [sign(survivors[0]!), sign(survivors[0]!)] })))).toBe(
      'SECAGG_INCONSISTENT',
    );
  });
});

describe('checkSurvivorConfirmations', () => {
  const confirm =
    (signatures: SurvivorSignature[], owners = [OWNER]) =>
    () =>
      checkSurvivorConfirmations({ signatures, owners, view, message: MESSAGE });

  it('needs t signatures from the owner’s own holders; strangers’ signatures do not count', async () => {
    const holderSigs = holdersOfOwner.map((id) => sign(id));
    expect(await asyncCodeOf(confirm(holderSigs.slice(0, THRESHOLD)))).toBe('none');
    expect(
      await asyncCodeOf(
        confirm([...holderSigs.slice(0, THRESHOLD - 1), ...strangers.map((id) => sign(id))]),
      ),
    ).toBe('SECAGG_BELOW_THRESHOLD');
  });

  it('holds every owner to the bound, not only the first', async () => {
    // A stranger sharing fewer than t holders with the owner (one always exists: the owner's
    // 4 neighbours have 12 other edges, so at most 4 of the 7 strangers reach 3 of them).
    const overlap = (id: string) =>
      view.graph.holdersOf(id).filter((h) => holdersOfOwner.includes(h)).length;
    const second = strangers.find((id) => overlap(id) < THRESHOLD)!;
    const secondHolders = view.graph.holdersOf(second);
    const signatures = holdersOfOwner.map((id) => sign(id));
    expect(await asyncCodeOf(confirm(signatures, [OWNER, second]))).toBe('SECAGG_BELOW_THRESHOLD');
    const both = [...new Set([...holdersOfOwner, ...secondHolders])].map((id) => sign(id));
    expect(await asyncCodeOf(confirm(both, [OWNER, second]))).toBe('none');
  });

  it('refuses a bad signature from a holder, and ignores one from a client it does not concern', async () => {
    const signatures = holdersOfOwner.map((id) => sign(id));
    const forged = { ...signatures[0]!, signature: signatures[1]!.signature };
    expect(await asyncCodeOf(confirm([forged, ...signatures.slice(1)]))).toBe('SECAGG_SIGNATURE');
    const wrongMessage = sign(holdersOfOwner[0]!, new TextEncoder().encode('another list'));
    expect(await asyncCodeOf(confirm([wrongMessage, ...signatures.slice(1)]))).toBe(
      'SECAGG_SIGNATURE',
    );
    const strangerBad = { clientId: strangers[0]!, signature: new Uint8Array(64) };
    expect(await asyncCodeOf(confirm([strangerBad, ...signatures]))).toBe('none');
  });

  it('with no owners, nothing is required', async () => {
    expect(await asyncCodeOf(confirm([], []))).toBe('none');
  });
});

describe('checkInputSignatures', () => {
  const owners = ids.slice(0, 3);
  const inputs = (over?: (s: SurvivorSignature[]) => SurvivorSignature[]) => () => {
    const signatures = owners.map((id) => sign(id));
    return checkInputSignatures({
      inputSignatures: over ? over(signatures) : signatures,
      owners,
      view,
      message: MESSAGE,
    });
  };

  it('accepts each owner’s signature of the shown sharer list, extra signers included', async () => {
    expect(await asyncCodeOf(inputs())).toBe('none');
    expect(await asyncCodeOf(inputs((s) => [...s, sign(ids[9]!)]))).toBe('none');
  });

  it('refuses a missing, repeated or wrong signature', async () => {
    expect(await asyncCodeOf(inputs((s) => s.slice(1)))).toBe('SECAGG_INCONSISTENT');
    expect(await asyncCodeOf(inputs((s) => [...s, s[0]!]))).toBe('SECAGG_INCONSISTENT');
    expect(
      await asyncCodeOf(inputs((s) => [s[0]!, s[1]!, sign(owners[2]!, new Uint8Array([1]))])),
    ).toBe('SECAGG_SIGNATURE');
    // Signed by someone else's key under the owner's id.
    expect(
      await asyncCodeOf(
        inputs((s) => [s[0]!, s[1]!, { clientId: owners[2]!, signature: s[0]!.signature }]),
      ),
    ).toBe('SECAGG_SIGNATURE');
  });
});
