import nacl from 'tweetnacl';
import { CohortError } from '../errors';
import { SECAGG_DOMAIN, encodeFields, hash32 } from './encoding';

/**
 * The SecAgg+ neighbour graph (Bell et al. 2020): who masks with whom and who holds whose
 * shares. Small cohorts use the complete graph (plain Bonawitz 2017). Large cohorts use a
 * random Harary graph: participants are shuffled by a public per-round seed and placed on a
 * ring, each linked to the k/2 nearest on either side. That graph is symmetric and exactly
 * k-regular, and every party (clients and coordinator) derives the same one from public data,
 * so nobody has to trust the coordinator's word about neighbourhoods.
 */
export interface NeighbourGraph {
  /** All participants, sorted. */
  readonly participants: readonly string[];
  /** True when every participant neighbours every other one. */
  readonly complete: boolean;
  /** Sorted neighbours of `id` (never `id` itself); throws for a non-participant. */
  neighboursOf(id: string): readonly string[];
  /** Sorted share holders of `id`: its neighbours and itself. Holder j receives share j. */
  holdersOf(id: string): readonly string[];
  /** Whether `a` and `b` are neighbours. */
  areNeighbours(a: string, b: string): boolean;
}

/**
 * The public per-round graph seed: a hash of the round view (the hash of the full signed
 * advertisement list, see round-view.ts). That list holds every participant's fresh keys, so
 * the seed is fixed only once every advertisement is in, and the coordinator cannot pick it:
 * all it can do is choose which advertisements to include, and every honest client checks
 * the one list it is shown.
 */
export function graphSeed(viewHash: Uint8Array): Uint8Array {
  return hash32(SECAGG_DOMAIN.graphSeed, [viewHash]);
}

/** Uniform integers from SHA-512 in counter mode: deterministic, platform-independent. */
function seededIntegers(seed: Uint8Array): (n: number) => number {
  let block: Uint8Array = new Uint8Array(0);
  let position = 0;
  let counter = 0;
  const nextUint32 = (): number => {
    if (position + 4 > block.length) {
      block = nacl.hash(encodeFields(SECAGG_DOMAIN.graphStream, [seed, String(counter++)]));
      position = 0;
    }
    const v =
      ((block[position]! << 24) |
        (block[position + 1]! << 16) |
        (block[position + 2]! << 8) |
        block[position + 3]!) >>>
      0;
    position += 4;
    return v;
  };
  return (n: number): number => {
    const limit = 2 ** 32 - (2 ** 32 % n); // rejection sampling removes modulo bias
    let x = nextUint32();
    while (x >= limit) x = nextUint32();
    return x % n;
  };
}

/** Throws MESSAGE_INVALID unless `ids` is strictly increasing (sorted, no duplicates). */
export function assertSortedUnique(ids: readonly string[], what: string): void {
  for (let i = 1; i < ids.length; i++) {
    if (!(ids[i - 1]! < ids[i]!)) {
      throw new CohortError('MESSAGE_INVALID', `${what} must be sorted and free of duplicates`);
    }
  }
}

/**
 * Builds the graph over `participants` (sorted, unique) with `k` neighbours each: complete when
 * k >= n - 1, otherwise the seeded random Harary graph (k must then be even).
 */
export function buildNeighbourGraph(
  participants: readonly string[],
  k: number,
  seed: Uint8Array,
): NeighbourGraph {
  assertSortedUnique(participants, 'participants');
  const n = participants.length;
  const ids = [...participants];
  const index = new Map(ids.map((id, i) => [id, i] as const));
  const complete = k >= n - 1;
  const neighbours = new Map<string, string[]>();
  if (complete) {
    for (const id of ids)
      neighbours.set(
        id,
        ids.filter((other) => other !== id),
      );
  } else {
    if (k < 2 || k % 2 !== 0) {
      throw new CohortError('CONFIG_UNSAFE', `a SecAgg+ graph needs an even k >= 2, got ${k}`);
    }
    const ring = [...ids];
    const int = seededIntegers(seed);
    // Stryker disable next-line EqualityOperator: the extra i = 0 step swaps ring[0] with itself (int(1) is always 0), and nothing draws after it.
    for (let i = ring.length - 1; i > 0; i--) {
      const j = int(i + 1);
      const tmp = ring[i]!;
      ring[i] = ring[j]!;
      ring[j] = tmp;
    }
    for (let p = 0; p < n; p++) {
      const list: string[] = [];
      for (let d = 1; d <= k / 2; d++) {
        list.push(ring[(p + d) % n]!, ring[(p - d + n) % n]!);
      }
      neighbours.set(ring[p]!, list.sort());
    }
  }
  const get = (id: string): string[] => {
    const list = neighbours.get(id);
    if (!list)
      throw new CohortError('SECAGG_INCONSISTENT', `${id} is not a participant of this round`);
    return list;
  };
  const holders = new Map<string, string[]>();
  return {
    participants: ids,
    complete,
    neighboursOf: get,
    holdersOf(id) {
      let list = holders.get(id);
      if (!list) {
        list = [...get(id), id].sort();
        holders.set(id, list);
      }
      return list;
    },
    areNeighbours(a, b) {
      if (a === b || !index.has(a) || !index.has(b)) return false;
      // Stryker disable next-line ConditionalExpression: without the shortcut, a complete graph's neighbour list holds every other participant, so includes() says true too.
      if (complete) return true;
      return get(a).includes(b);
    },
  };
}
