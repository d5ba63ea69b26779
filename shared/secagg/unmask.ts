import { CohortError } from '../errors';
import { forgetCachedKeys, x25519PublicKey } from './crypto-primitives';
import { bytesEqual, wipe } from './encoding';
import type { NeighbourGraph } from './graph';
import type { AdvertisedKeys } from './messages';
import type { SecAggConfig } from './params';
import { addMask } from './prg';
import { decodeAggregate } from './quantize';
import { combineShares } from './shamir';
import { pairwiseSeed, pairwiseSign } from './signed-payloads';

/** What the coordinator learns from a completed round: the survivors' weighted mean, no more. */
export interface SecAggResult {
  /** Example-weighted mean of the survivors' (clipped, quantized) updates. */
  weightedMean: Float32Array;
  /** Sum of the survivors' capped example counts. */
  totalWeight: number;
  /** Example-weighted mean of the survivors' train losses (each capped at MAX_MASKED_LOSS). */
  meanTrainLoss: number;
  /** Clients whose updates are in the mean, sorted. */
  survivors: string[];
  /** Clients that shared keys but sent no masked input, sorted. */
  dropped: string[];
}

/**
 * Refuses (SECAGG_BELOW_THRESHOLD) to start Unmasking when some secret that must be rebuilt
 * (a survivor's self-mask seed, or the masking key of a dropped client with surviving
 * neighbours) has fewer than t share holders among the clients that confirmed the survivor
 * list: honest clients would refuse anyway, so the round aborts early and cleanly.
 */
export function assertReconstructible(
  graph: NeighbourGraph,
  sharers: readonly string[],
  alive: ReadonlySet<string>,
  confirmed: ReadonlySet<string>,
  threshold: number,
): void {
  for (const owner of sharers) {
    const needed = alive.has(owner) || graph.neighboursOf(owner).some((n) => alive.has(n));
    if (!needed) continue;
    const holders = graph.holdersOf(owner).filter((h) => confirmed.has(h)).length;
    if (holders < threshold) {
      throw new CohortError(
        'SECAGG_BELOW_THRESHOLD',
        `only ${holders} share holders of ${owner} remain, ${threshold} needed`,
      );
    }
  }
}

/** One mask to take out of the summed masked inputs: accumulator -= ... is sign * PRG(seed). */
export interface MaskTerm {
  /** The 32-byte PRG seed (a self-mask seed or a pairwise seed); wiped once applied. */
  readonly seed: Uint8Array;
  /** +1 adds PRG(seed), -1 subtracts it (mod 2^32). */
  readonly sign: 1 | -1;
}

/**
 * Applies every term to the accumulator in place (accumulator += sign * PRG(seed), mod 2^32).
 * The order does not matter (addition mod 2^32 commutes), which is what lets a coordinator
 * spread the work over threads by slices of the vector: the expansion of a few thousand
 * model-sized masks is the whole cost of unmasking a large round.
 */
export type MaskRemover = (accumulator: Uint32Array, terms: readonly MaskTerm[]) => Promise<void>;

/** The default {@link MaskRemover}: every mask in turn, on the calling thread. */
export const removeMasksInline: MaskRemover = async (accumulator, terms) => {
  for (const term of terms) await addMask(accumulator, term.seed, term.sign);
};

/** Everything the unmasking step needs from the server round's state. */
export interface UnmaskInputs {
  roundId: string;
  config: SecAggConfig;
  /** Shamir threshold of the round view. */
  threshold: number;
  graph: NeighbourGraph;
  /** Sum of the survivors' masked inputs mod 2^32; unmasked in place. */
  accumulator: Uint32Array;
  survivors: readonly string[];
  dropped: readonly string[];
  keys: ReadonlyMap<string, AdvertisedKeys>;
  selfMaskShares: ReadonlyMap<string, readonly Uint8Array[]>;
  secretKeyShares: ReadonlyMap<string, readonly Uint8Array[]>;
  /** Where the masks are expanded and removed; defaults to {@link removeMasksInline}. */
  removeMasks?: MaskRemover;
}

/**
 * Removes every mask from the summed masked inputs and decodes the mean. For each survivor u
 * its self-mask seed b_u is rebuilt from t shares and PRG(b_u) subtracted. For each dropped
 * client u whose pairwise masks are in the sum (it has surviving neighbours), its masking
 * secret key is rebuilt, checked against the public key it advertised (so bad shares are
 * caught rather than silently corrupting the model), and each surviving neighbour's pairwise
 * mask with u removed. Shortfalls give SECAGG_BELOW_THRESHOLD, bad shares SECAGG_RECONSTRUCT.
 */
export async function reconstructAggregate(inputs: UnmaskInputs): Promise<SecAggResult> {
  const { config, graph, accumulator, keys } = inputs;
  const t = inputs.threshold;
  const alive = new Set(inputs.survivors);
  const terms: MaskTerm[] = [];
  try {
    for (const owner of inputs.survivors) {
      const seed = await combineOwned(inputs.selfMaskShares, owner, t, 'self-mask seed');
      terms.push({ seed, sign: -1 });
    }
    for (const owner of inputs.dropped) {
      const survivingNeighbours = graph.neighboursOf(owner).filter((n) => alive.has(n));
      if (survivingNeighbours.length === 0) continue; // none of its masks entered the sum
      const secretKey = await combineOwned(inputs.secretKeyShares, owner, t, 'masking key');
      try {
        if (!bytesEqual(await x25519PublicKey(secretKey), keys.get(owner)!.sPublicKey)) {
          throw new CohortError(
            'SECAGG_RECONSTRUCT',
            `rebuilt masking key of ${owner} does not match its public key`,
          );
        }
        for (const neighbour of survivingNeighbours) {
          const neighbourKey = keys.get(neighbour)!.sPublicKey;
          const seed = await pairwiseSeed(inputs.roundId, secretKey, neighbourKey);
          // The neighbour added sign(neighbour, owner) * PRG(seed); take it away.
          terms.push({ seed, sign: pairwiseSign(neighbour, owner) === 1 ? -1 : 1 });
        }
      } finally {
        forgetCachedKeys(secretKey);
        wipe(secretKey);
      }
    }
    await (inputs.removeMasks ?? removeMasksInline)(accumulator, terms);
  } finally {
    for (const term of terms) wipe(term.seed);
  }
  const decoded = decodeAggregate(accumulator, config, inputs.survivors.length * config.weightCap);
  return {
    weightedMean: decoded.weightedMean,
    totalWeight: decoded.totalWeight,
    meanTrainLoss: decoded.meanTrainLoss,
    survivors: [...inputs.survivors],
    dropped: [...inputs.dropped],
  };
}

async function combineOwned(
  shares: ReadonlyMap<string, readonly Uint8Array[]>,
  owner: string,
  threshold: number,
  what: string,
): Promise<Uint8Array> {
  const list = shares.get(owner) ?? [];
  if (list.length < threshold) {
    throw new CohortError(
      'SECAGG_BELOW_THRESHOLD',
      `${list.length} shares of the ${what} of ${owner}, ${threshold} needed`,
    );
  }
  return combineShares(list, threshold);
}
