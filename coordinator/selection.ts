import { createRng } from '../shared/random';

/** How the coordinator sizes a round's cohort. */
export interface CohortSizing {
  minClients: number;
  clientsPerRound?: number | undefined;
  fraction?: number | undefined;
  overSelection: number;
}

/**
 * The number of results a round wants: `clientsPerRound`, or `fraction` of those connected,
 * never below `minClients`, never above what is connected.
 */
export function cohortTarget(available: number, sizing: CohortSizing): number {
  let target: number;
  if (sizing.clientsPerRound !== undefined) target = sizing.clientsPerRound;
  else if (sizing.fraction !== undefined) target = Math.ceil(sizing.fraction * available);
  else target = available;
  return Math.min(available, Math.max(sizing.minClients, target));
}

/**
 * Samples the cohort for a round: `target` plus a little over-selection (to absorb
 * dropouts), from the eligible ids. Deterministic for (seed, round, eligible set), so a
 * seeded simulation replays exactly; ids are sorted first so connection order is irrelevant.
 */
export function selectCohort(
  eligible: readonly string[],
  target: number,
  overSelection: number,
  seed: number,
  round: number,
): string[] {
  const pool = [...eligible].sort();
  const wanted = Math.min(pool.length, Math.ceil(target * (1 + overSelection)));
  const rng = createRng((seed ^ Math.imul(round, 0x9e3779b1)) >>> 0);
  // Stryker disable next-line EqualityOperator: i >= 0 adds a swap of pool[0] with itself.
  for (let i = pool.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, wanted).sort();
}
