import { StreamingWeightedMean } from '../../shared/aggregation/streaming-weighted-mean';
import { CohortError } from '../../shared/errors';
import type { PartialMaskedSum } from '../../shared/secagg';
import { addPackedInto, packLowBits, packedElementBytes } from '../../shared/secagg';
import { allocateWrapVector } from '../../shared/simd/kernels';

/** How many rounds' partial sums a gateway keeps (the leader asks for the newest). */
const KEPT_ROUNDS = 2;

/** What a fold needs to know of the round: its masked-input length and wire width. */
export interface FoldTarget {
  roundId: string;
  /** Elements per masked input (the vector plus the weight and loss elements). */
  elements: number;
  modulusBits: number;
}

interface RoundSum {
  target: FoldTarget;
  sum: Uint32Array;
  contributors: string[];
}

/**
 * A gateway's running sums of the masked inputs of its own clients, one per round, mod 2^32
 * exactly as the leader's accumulator: partial sums add up to the sum of all inputs, so
 * secure aggregation stays exact while the leader receives one vector per gateway. Only
 * masked inputs are ever held: no individual update is in the clear here either.
 */
export class PartialSums {
  private readonly rounds = new Map<string, RoundSum>();

  /** Checks one client's packed masked input against the round and adds it. */
  fold(target: FoldTarget, clientId: string, maskedInput: Uint8Array): void {
    let round = this.rounds.get(target.roundId);
    if (!round) {
      round = { target, sum: allocateWrapVector(target.elements), contributors: [] };
      this.rounds.set(target.roundId, round);
      for (const old of [...this.rounds.keys()].slice(0, -KEPT_ROUNDS)) this.rounds.delete(old);
    }
    const { elements, modulusBits } = round.target;
    if (target.elements !== elements || target.modulusBits !== modulusBits) {
      throw new CohortError('MESSAGE_INVALID', `round ${target.roundId} changed its vector shape`);
    }
    if (round.contributors.includes(clientId)) {
      throw new CohortError('UPDATE_DUPLICATE', `second masked input from ${clientId}`);
    }
    if (maskedInput.length !== elements * packedElementBytes(modulusBits)) {
      throw new CohortError(
        'UPDATE_SHAPE',
        `masked input of ${clientId} has ${maskedInput.length} bytes, not ${elements} elements of ${modulusBits} bits`,
      );
    }
    addPackedInto(round.sum, maskedInput, modulusBits);
    round.contributors.push(clientId);
  }

  /** Hands over (and forgets) a round's partial sum, packed like one masked input. */
  take(roundId: string): PartialMaskedSum {
    const round = this.rounds.get(roundId);
    this.rounds.delete(roundId);
    if (!round) return { roundId, contributors: [], sum: new Uint8Array(0) };
    // A copy: at 32 bits packLowBits is a view of the accumulator, which is wiped next.
    const sum = packLowBits(round.sum, round.target.modulusBits).slice();
    round.sum.fill(0);
    return { roundId, contributors: [...round.contributors].sort(), sum };
  }

  /** Forgets a round (it ended, or aborted, without asking for this sum). */
  discard(roundId: string): void {
    this.rounds.get(roundId)?.sum.fill(0);
    this.rounds.delete(roundId);
  }
}

/**
 * Plain rounds: the updates of a gateway's own clients, held where they arrived until the
 * leader says which ones count and with what weight (it alone knows which answers it
 * accepted). The gateway then hands over their weighted mean and total weight: one vector
 * per gateway instead of one per client.
 */
export class HeldUpdates {
  private readonly rounds = new Map<string, Map<string, Float32Array>>();

  /** Keeps one client's checked update (the right length, every value finite). */
  hold(roundId: string, clientId: string, update: Float32Array, length: number): void {
    if (update.length !== length) {
      throw new CohortError(
        'UPDATE_SHAPE',
        `update has ${update.length} values, model has ${length}`,
      );
    }
    const bad = update.findIndex((v) => !Number.isFinite(v));
    if (bad !== -1)
      throw new CohortError('UPDATE_NON_FINITE', `update has ${update[bad]} at index ${bad}`);
    let round = this.rounds.get(roundId);
    if (!round) {
      round = new Map();
      this.rounds.set(roundId, round);
      for (const old of [...this.rounds.keys()].slice(0, -KEPT_ROUNDS)) this.rounds.delete(old);
    }
    if (round.has(clientId))
      throw new CohortError('UPDATE_DUPLICATE', `second update from ${clientId}`);
    round.set(clientId, update);
  }

  /**
   * The weighted mean of exactly the listed updates, and their total weight; forgets the
   * round. A listed client whose update is not held here is refused (MESSAGE_INVALID).
   */
  take(
    roundId: string,
    weights: ReadonlyArray<{ clientId: string; weight: number }>,
  ): { mean: Float32Array; weight: number } {
    const round = this.rounds.get(roundId) ?? new Map<string, Float32Array>();
    this.rounds.delete(roundId);
    const first = weights[0] && round.get(weights[0].clientId);
    if (!first) throw new CohortError('MESSAGE_INVALID', `no held update for round ${roundId}`);
    const mean = new StreamingWeightedMean(first.length);
    try {
      for (const { clientId, weight } of weights) {
        const update = round.get(clientId);
        if (!update) throw new CohortError('MESSAGE_INVALID', `no held update of ${clientId}`);
        mean.add(update, weight);
      }
      return { mean: mean.mean(), weight: mean.totalWeight };
    } finally {
      mean.release();
    }
  }

  /** Forgets a round's updates. */
  discard(roundId: string): void {
    this.rounds.delete(roundId);
  }
}
