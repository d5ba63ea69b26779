import type { Dataset } from '../../shared/data/dataset';
import { selectExamples } from '../../shared/data/dataset';

/** One party's slice of a dataset: `index` in 0..count-1 (0-based; the CLI's i/n is 1-based). */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/**
 * The example indices of shard `shard` of `size` examples: a seeded shuffle (so each shard
 * is IID, class-balanced in expectation) cut into `count` contiguous blocks whose sizes
 * differ by at most one. The same (size, shard.count, seed) always yields the same disjoint
 * blocks covering every example, so independent clients agree without talking. Indices are
 * returned in increasing order.
 */
export function shardIndices(size: number, shard: Shard, seed: number): Uint32Array {
  const order = new Uint32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  const random = mulberry32(seed);
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  const start = Math.floor((shard.index * size) / shard.count);
  const end = Math.floor(((shard.index + 1) * size) / shard.count);
  return order.slice(start, end).sort();
}

/** The examples of `shard` of `data` (see shardIndices), copied. */
export function takeShard(data: Dataset, shard: Shard, seed: number): Dataset {
  return selectExamples(data, shardIndices(data.count, shard, seed));
}

/** A small, fast, well-mixed 32-bit PRNG; uniform floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
