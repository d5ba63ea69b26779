import { createRng, mixSeeds, normalizeSeed } from '../../shared/random';

describe('createRng', () => {
  it('repeats the same stream for the same seed and differs for another seed', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const seqA = Array.from({ length: 20 }, () => a.uint32());
    const seqB = Array.from({ length: 20 }, () => b.uint32());
    const seqC = Array.from({ length: 20 }, () => c.uint32());
    expect(seqA).toEqual(seqB);
    expect(seqA).not.toEqual(seqC);
  });

  it('matches the mulberry32 reference values (platform-independent integer arithmetic)', () => {
    // First outputs of mulberry32 seeded with 0, as published with the algorithm.
    const rng = createRng(0);
    expect(rng.uint32()).toBe(1144304738);
    expect(rng.uint32()).toBe(1416247);
  });

  it('keeps next() in [0, 1) with a mean near 1/2', () => {
    const rng = createRng(7);
    let sum = 0;
    let outside = 0;
    for (let i = 0; i < 20000; i++) {
      const x = rng.next();
      if (x < 0 || x >= 1) outside += 1;
      sum += x;
    }
    expect(outside).toBe(0);
    expect(sum / 20000).toBeCloseTo(0.5, 1);
  });

  it('draws int(n) uniformly over [0, n)', () => {
    const rng = createRng(3);
    const counts = new Array<number>(5).fill(0);
    for (let i = 0; i < 50000; i++) counts[rng.int(5)]! += 1;
    for (const c of counts) expect(Math.abs(c - 10000)).toBeLessThan(500);
    expect(() => rng.int(0)).toThrow(RangeError);
    expect(() => rng.int(1.5)).toThrow(RangeError);
  });

  it('shuffles in place into a permutation, reproducibly', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = createRng(9).shuffle([...items]);
    expect([...shuffled].sort((x, y) => x - y)).toEqual(items);
    expect(shuffled).not.toEqual(items);
    expect(createRng(9).shuffle([...items])).toEqual(shuffled);
    const same = [1, 2, 3];
    expect(createRng(1).shuffle(same)).toBe(same);
  });

  it('samples normal() with mean 0 and variance 1', () => {
    const rng = createRng(11);
    const n = 40000;
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.normal();
      sum += x;
      sumSq += x * x;
    }
    const mean = sum / n;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(sumSq / n - mean * mean).toBeCloseTo(1, 1);
  });

  it.each([0.1, 0.5, 1, 2.5, 10])(
    'samples gamma(%p) with mean and variance equal to the shape',
    (shape) => {
      const rng = createRng(5);
      const n = 40000;
      let sum = 0;
      let sumSq = 0;
      let negative = 0;
      for (let i = 0; i < n; i++) {
        const x = rng.gamma(shape);
        if (x < 0) negative += 1;
        sum += x;
        sumSq += x * x;
      }
      const mean = sum / n;
      const variance = sumSq / n - mean * mean;
      expect(negative).toBe(0);
      expect(Math.abs(mean - shape) / shape).toBeLessThan(0.05);
      expect(Math.abs(variance - shape) / shape).toBeLessThan(0.1);
    },
  );

  it('rejects a non-positive gamma shape', () => {
    expect(() => createRng(1).gamma(0)).toThrow(RangeError);
    expect(() => createRng(1).gamma(Number.NaN)).toThrow(RangeError);
  });
});

describe('seeds', () => {
  it('folds any finite number into 32 bits and refuses non-finite seeds', () => {
    expect(normalizeSeed(5)).toBe(5);
    expect(normalizeSeed(-1)).not.toBe(normalizeSeed(1));
    expect(normalizeSeed(1.5)).not.toBe(normalizeSeed(1));
    expect(normalizeSeed(2 ** 40)).toBeLessThan(2 ** 32);
    expect(() => normalizeSeed(Number.NaN)).toThrow(RangeError);
  });

  it('mixes seeds so that swapped components give different streams', () => {
    expect(mixSeeds(1, 2)).toBe(mixSeeds(1, 2));
    expect(mixSeeds(1, 2)).not.toBe(mixSeeds(2, 1));
    expect(mixSeeds(1, 2)).not.toBe(mixSeeds(1, 3));
  });
});
