import {
  formatPartitionSpec,
  parsePartitionSpec,
  partitionIndices,
} from '../../shared/data/partition';
import type { PartitionSpec } from '../../shared/data/partition';
import { isCohortError } from '../../shared/errors';

/** 1000 labels, 100 of each of 10 classes, interleaved. */
const LABELS = Array.from({ length: 1000 }, (_, i) => i % 10);

function expectDisjointCover(parts: number[][], n: number): void {
  const seen = new Set<number>();
  for (const part of parts) {
    for (const i of part) {
      expect(seen.has(i)).toBe(false);
      seen.add(i);
    }
  }
  expect(seen.size).toBe(n);
}

function meanLabelEntropy(parts: number[][], labels: number[], classes: number): number {
  let total = 0;
  for (const part of parts) {
    const counts = new Array<number>(classes).fill(0);
    for (const i of part) counts[labels[i]!]! += 1;
    let h = 0;
    for (const c of counts) if (c > 0) h -= (c / part.length) * Math.log2(c / part.length);
    total += h;
  }
  return total / parts.length;
}

function expectCode(fn: () => unknown, code: 'CONFIG_INVALID' | 'DATA_INVALID'): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(isCohortError(caught, code)).toBe(true);
}

describe('parsePartitionSpec', () => {
  it('reads the three forms and round-trips through formatPartitionSpec', () => {
    expect(parsePartitionSpec('iid')).toEqual({ kind: 'iid' });
    expect(parsePartitionSpec(' Dirichlet:0.5 ')).toEqual({ kind: 'dirichlet', alpha: 0.5 });
    expect(parsePartitionSpec('dirichlet:1e-1')).toEqual({ kind: 'dirichlet', alpha: 0.1 });
    expect(parsePartitionSpec('shards:2')).toEqual({ kind: 'shards', shardsPerClient: 2 });
    for (const text of ['iid', 'dirichlet:0.5', 'shards:3']) {
      expect(formatPartitionSpec(parsePartitionSpec(text))).toBe(text);
    }
  });

  it.each([
    '',
    'random',
    'iid:1',
    'dirichlet',
    'dirichlet:',
    'dirichlet:0',
    'dirichlet:-1',
    'dirichlet:abc',
    'dirichlet:Infinity',
    'shards:0',
    'shards:1.5',
    'shards:-2',
    'shards',
  ])('refuses %p with CONFIG_INVALID', (text) => {
    expectCode(() => parsePartitionSpec(text), 'CONFIG_INVALID');
  });
});

describe('partitionIndices', () => {
  const specs: PartitionSpec[] = [
    { kind: 'iid' },
    { kind: 'dirichlet', alpha: 0.5 },
    { kind: 'dirichlet', alpha: 0.01 },
    { kind: 'shards', shardsPerClient: 2 },
  ];

  it.each(specs)('gives disjoint, sorted, non-empty parts covering all examples (%p)', (spec) => {
    const parts = partitionIndices(LABELS, 10, 7, spec, 123);
    expect(parts).toHaveLength(7);
    expectDisjointCover(parts, LABELS.length);
    for (const part of parts) {
      expect(part.length).toBeGreaterThan(0);
      expect([...part].sort((a, b) => a - b)).toEqual(part);
    }
  });

  it.each(specs)('is deterministic for a seed and varies with it (%p)', (spec) => {
    const a = partitionIndices(LABELS, 10, 5, spec, 1);
    expect(partitionIndices(LABELS, 10, 5, spec, 1)).toEqual(a);
    expect(partitionIndices(LABELS, 10, 5, spec, 2)).not.toEqual(a);
  });

  it('splits IID into sizes that differ by at most one', () => {
    const sizes = partitionIndices(LABELS, 10, 3, { kind: 'iid' }, 0).map((p) => p.length);
    expect(sizes.sort()).toEqual([333, 333, 334]);
  });

  it('hand-checkable: 2 clients, 2 shards each, 8 examples of 4 classes', () => {
    // Sorted by label the examples form shards {0,4} {1,5} {2,6} {3,7} (labels 0..3).
    const labels = [0, 1, 2, 3, 0, 1, 2, 3];
    const parts = partitionIndices(labels, 4, 2, { kind: 'shards', shardsPerClient: 2 }, 9);
    expectDisjointCover(parts, 8);
    for (const part of parts) {
      expect(part).toHaveLength(4);
      const partLabels = part.map((i) => labels[i]!);
      // Each client holds exactly two whole classes, two examples each.
      expect(new Set(partLabels).size).toBe(2);
      for (const label of new Set(partLabels)) {
        expect(partLabels.filter((l) => l === label)).toHaveLength(2);
      }
    }
  });

  it('gives each shards client at most shardsPerClient(+1 at boundaries) classes', () => {
    const parts = partitionIndices(LABELS, 10, 10, { kind: 'shards', shardsPerClient: 2 }, 4);
    for (const part of parts) {
      expect(new Set(part.map((i) => LABELS[i]!)).size).toBeLessThanOrEqual(2);
    }
  });

  it('one client gets everything, whatever the spec', () => {
    for (const spec of specs) {
      expect(partitionIndices(LABELS, 10, 1, spec, 3)).toEqual([LABELS.map((_, i) => i)]);
    }
  });

  it('fills empty clients when there are barely enough examples', () => {
    const labels = [0, 0, 0, 1];
    for (const spec of specs) {
      const parts = partitionIndices(labels, 2, 4, spec, 5);
      expectDisjointCover(parts, 4);
      for (const part of parts) expect(part).toHaveLength(1);
    }
    // Fewer examples than clients: some clients must stay empty, the rest still covered.
    const parts = partitionIndices([0, 1], 2, 3, { kind: 'dirichlet', alpha: 1 }, 5);
    expectDisjointCover(parts, 2);
  });

  it('skews labels more as alpha decreases (mean per-client label entropy)', () => {
    const entropy = (alpha: number): number => {
      let sum = 0;
      for (let seed = 0; seed < 5; seed++) {
        const parts = partitionIndices(LABELS, 10, 10, { kind: 'dirichlet', alpha }, seed);
        sum += meanLabelEntropy(parts, LABELS, 10);
      }
      return sum / 5;
    };
    const iid = meanLabelEntropy(partitionIndices(LABELS, 10, 10, { kind: 'iid' }, 0), LABELS, 10);
    const h100 = entropy(100);
    const h1 = entropy(1);
    const h01 = entropy(0.1);
    expect(iid).toBeGreaterThan(3.1); // log2(10) = 3.32 for perfectly balanced clients
    expect(h100).toBeGreaterThan(3.1);
    expect(h1).toBeLessThan(h100 - 0.2);
    expect(h01).toBeLessThan(h1 - 0.5);
    expect(h01).toBeLessThan(2);
  });

  it('refuses bad arguments', () => {
    expectCode(() => partitionIndices(LABELS, 10, 0, { kind: 'iid' }, 0), 'CONFIG_INVALID');
    expectCode(() => partitionIndices(LABELS, 0, 2, { kind: 'iid' }, 0), 'CONFIG_INVALID');
    expectCode(
      () => partitionIndices(LABELS, 10, 2, { kind: 'dirichlet', alpha: 0 }, 0),
      'CONFIG_INVALID',
    );
    expectCode(
      () => partitionIndices(LABELS, 10, 2, { kind: 'shards', shardsPerClient: 0 }, 0),
      'CONFIG_INVALID',
    );
    expectCode(() => partitionIndices([0, 10], 10, 2, { kind: 'iid' }, 0), 'DATA_INVALID');
    expectCode(() => partitionIndices([0, 1.5], 10, 2, { kind: 'iid' }, 0), 'DATA_INVALID');
  });
});

describe('partition edge cases, exactly', () => {
  /** The message of the refusal (fails the test when nothing is thrown). */
  const refusal = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      if (isCohortError(err)) return err.message;
      throw err;
    }
    throw new Error('expected a refusal');
  };

  it('each malformed spec is refused with the reason that fits it', () => {
    expect(refusal(() => parsePartitionSpec('iid:3'))).toMatch(/'iid' takes no parameter/);
    expect(refusal(() => parsePartitionSpec('dirichlet:abc'))).toMatch(
      /expected 'dirichlet:<alpha>' with a positive number/,
    );
    expect(refusal(() => parsePartitionSpec('dirichlet'))).toMatch(/expected 'dirichlet:<alpha>'/);
    for (const bad of ['shards:x5', 'shards:5x', 'shards', 'shards:1.5']) {
      expect(refusal(() => parsePartitionSpec(bad))).toMatch(
        /expected 'shards:<k>' with a positive integer/,
      );
    }
    expect(refusal(() => parsePartitionSpec('zipf:2'))).toMatch(
      /expected 'iid', 'dirichlet:<alpha>' or 'shards:<k>'/,
    );
  });

  it('accepts a space after the colon, several digits and the smallest valid values', () => {
    expect(parsePartitionSpec('dirichlet: 0.5')).toEqual({ kind: 'dirichlet', alpha: 0.5 });
    expect(parsePartitionSpec('shards:12')).toEqual({ kind: 'shards', shardsPerClient: 12 });
    expect(parsePartitionSpec('shards:1')).toEqual({ kind: 'shards', shardsPerClient: 1 });
    expect(partitionIndices([0, 0, 0], 1, 2, { kind: 'iid' }, 1).flat().sort()).toEqual([0, 1, 2]);
  });

  it('refuses an unknown kind, a string alpha and a negative label', () => {
    expectCode(
      () => partitionIndices(LABELS, 10, 2, { kind: 'zipf' } as unknown as PartitionSpec, 0),
      'CONFIG_INVALID',
    );
    expectCode(
      () =>
        partitionIndices(LABELS, 10, 2, { kind: 'dirichlet', alpha: '1' as unknown as number }, 0),
      'CONFIG_INVALID',
    );
    expectCode(() => partitionIndices([0, -1], 2, 2, { kind: 'iid' }, 0), 'DATA_INVALID');
  });

  it('a vanishing alpha gives each class to exactly one client (the Dirichlet limit)', () => {
    // Every gamma draw underflows to 0: the proportions become one random vertex per class.
    const parts = partitionIndices(LABELS, 10, 4, { kind: 'dirichlet', alpha: 1e-300 }, 9);
    expectDisjointCover(parts, LABELS.length);
    for (let label = 0; label < 10; label++) {
      const owners = parts.filter((part) => part.some((i) => LABELS[i] === label));
      expect(owners).toHaveLength(1);
    }
  });

  it('an empty client takes one example from the first of the largest clients', () => {
    // Shards of 2 classes over 3 clients: 4 examples, one client may come out empty.
    const parts = partitionIndices([0, 0, 1, 1], 2, 3, { kind: 'shards', shardsPerClient: 1 }, 2);
    expectDisjointCover(parts, 4);
    expect(parts.every((part) => part.length >= 1)).toBe(true);
    // Two examples for three clients: one client stays empty.
    expect(partitionIndices([0, 1], 2, 3, { kind: 'iid' }, 4)).toEqual([[], [1], [0]]);
  });

  it('is pinned for a seed: the same spec and seed deal the same examples, release after release', () => {
    const labels = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2];
    expect(partitionIndices(labels, 3, 3, { kind: 'iid' }, 11)).toEqual(PINNED.iid);
    expect(partitionIndices(labels, 3, 3, { kind: 'dirichlet', alpha: 0.5 }, 11)).toEqual(
      PINNED.dirichlet,
    );
    expect(partitionIndices(labels, 3, 3, { kind: 'shards', shardsPerClient: 2 }, 11)).toEqual(
      PINNED.shards,
    );
    expect(partitionIndices([0, 0, 0, 0, 1], 2, 4, { kind: 'dirichlet', alpha: 0.05 }, 3)).toEqual(
      PINNED.fill,
    );
  });
});

/** Outputs recorded from this implementation; a change here changes every seeded experiment. */
const PINNED = {
  iid: [
    [1, 2, 7, 9],
    [3, 6, 8, 10],
    [0, 4, 5, 11],
  ],
  dirichlet: [[1, 4, 7, 8, 10], [0, 2, 3, 5, 6, 9], [11]],
  shards: [
    [1, 4, 7, 10],
    [0, 5, 6, 11],
    [2, 3, 8, 9],
  ],
  fill: [[2], [0, 3], [4], [1]],
};
