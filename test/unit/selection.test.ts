import { cohortTarget, selectCohort } from '../../coordinator/selection';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `c${String(i).padStart(2, '0')}`);

describe('cohortTarget', () => {
  test('clients-per-round wins, clamped between min-clients and those connected', () => {
    expect(cohortTarget(10, { minClients: 3, clientsPerRound: 5, overSelection: 0 })).toBe(5);
    expect(cohortTarget(4, { minClients: 3, clientsPerRound: 5, overSelection: 0 })).toBe(4);
  });
  test('fraction rounds up and never goes below min-clients', () => {
    expect(cohortTarget(10, { minClients: 2, fraction: 0.25, overSelection: 0 })).toBe(3);
    expect(cohortTarget(10, { minClients: 5, fraction: 0.1, overSelection: 0 })).toBe(5);
  });
  test('without either, everyone connected takes part', () => {
    expect(cohortTarget(7, { minClients: 3, overSelection: 0.1 })).toBe(7);
  });
});

describe('selectCohort', () => {
  test('over-selects by the given fraction, rounding up, within what is available', () => {
    expect(selectCohort(ids(20), 10, 0.1, 1, 1)).toHaveLength(11);
    expect(selectCohort(ids(20), 10, 0.25, 1, 1)).toHaveLength(13);
    expect(selectCohort(ids(5), 5, 0.5, 1, 1)).toHaveLength(5);
  });
  test('is deterministic for (seed, round, eligible set) and ignores connection order', () => {
    const a = selectCohort(ids(30), 8, 0, 42, 3);
    const b = selectCohort([...ids(30)].reverse(), 8, 0, 42, 3);
    expect(b).toEqual(a);
    // Returned in id order, so logs, the database and the next phase see one ordering.
    expect(a).toEqual([...a].sort());
    expect(a).not.toEqual(ids(30).slice(0, 8));
    expect(new Set(a).size).toBe(8);
    expect(a.every((id) => ids(30).includes(id))).toBe(true);
  });
  test('different rounds and seeds draw different cohorts, and every client gets picked', () => {
    const seen = new Set<string>();
    const cohorts = new Set<string>();
    for (let round = 1; round <= 20; round++) {
      const cohort = selectCohort(ids(30), 5, 0, 7, round);
      cohort.forEach((id) => seen.add(id));
      cohorts.add(cohort.join(','));
    }
    expect(cohorts.size).toBeGreaterThan(15);
    expect(seen.size).toBe(30);
    expect(selectCohort(ids(30), 5, 0, 8, 1)).not.toEqual(selectCohort(ids(30), 5, 0, 7, 1));
  });
});
