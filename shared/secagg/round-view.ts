import { toHex } from '../bytes';
import { CohortError } from '../errors';
import { SECAGG_DOMAIN, hash32 } from './encoding';
import type { EncodedField } from './encoding';
import type { NeighbourGraph } from './graph';
import { assertSortedUnique, buildNeighbourGraph, graphSeed } from './graph';
import type { AdvertisedKeys } from './messages';
import type { GraphParams } from './params';
import { graphParams } from './params';
import type { RoundContext } from './signed-payloads';

/**
 * The one view of a round every honest party must share: the full list of signed key
 * advertisements (who takes part, with which identity and per-round keys), the hash that
 * names it, and what follows from it alone — the security parameters and the neighbour
 * graph. The hash is sealed into every share bundle and signed in the consistency check, so
 * a coordinator that shows two clients different participant sets (or graphs, or keys) gets
 * bundles that do not open and signatures that do not count.
 */
export interface RoundView {
  readonly ctx: RoundContext;
  /** Hash of the context and every advertisement, in participant order. */
  readonly hash: Uint8Array;
  /** Participants, sorted. */
  readonly participants: readonly string[];
  /** Each participant's signed advertisement. */
  readonly keys: ReadonlyMap<string, AdvertisedKeys>;
  /** k, t and the colluder bound derived from the participant count. */
  readonly params: GraphParams;
  /** The neighbour graph seeded by the view hash. */
  readonly graph: NeighbourGraph;
}

/** Hash of a round context and its advertisement list (sorted by client id). */
export function roundViewHash(
  ctx: RoundContext,
  advertisements: readonly AdvertisedKeys[],
): Uint8Array {
  const fields: EncodedField[] = [
    ctx.coordinatorId,
    ctx.experiment,
    ctx.roundId,
    ctx.modelHash,
    ctx.configHash,
    String(advertisements.length),
  ];
  for (const a of advertisements) {
    fields.push(a.clientId, a.identityPublicKey, a.cPublicKey, a.sPublicKey, a.signature);
    // Only when present, so rounds without a registrar hash exactly as before.
    if (a.certificate !== undefined) fields.push(a.certificate);
  }
  return hash32(SECAGG_DOMAIN.roundView, fields);
}

/**
 * Builds the view from an advertisement list after the structural checks (sorted unique ids,
 * no public key used twice, at least 3 participants); signatures are checked by the caller
 * (the coordinator as they arrive, each client on the whole list it is shown).
 */
export function buildRoundView(
  ctx: RoundContext,
  advertisements: readonly AdvertisedKeys[],
): RoundView {
  const participants = advertisements.map((a) => a.clientId);
  assertSortedUnique(participants, 'advertisements');
  const seen = new Set<string>();
  for (const a of advertisements) {
    for (const k of [a.identityPublicKey, a.cPublicKey, a.sPublicKey]) {
      const hex = toHex(k);
      if (seen.has(hex)) {
        throw new CohortError('SECAGG_INCONSISTENT', `a public key appears twice (${a.clientId})`);
      }
      seen.add(hex);
    }
  }
  if (participants.length < 3) {
    throw new CohortError(
      'SECAGG_BELOW_THRESHOLD',
      `${participants.length} participants advertised keys; secure aggregation needs at least 3`,
    );
  }
  const params = graphParams(participants.length);
  const hash = roundViewHash(ctx, advertisements);
  return {
    ctx,
    hash,
    participants,
    keys: new Map(advertisements.map((a) => [a.clientId, a] as const)),
    params,
    graph: buildNeighbourGraph(participants, params.neighbours, graphSeed(hash)),
  };
}
