import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadDataFolder } from '../../client-node/data/load-data-folder';
import { loadMnist } from '../../client-node/data/mnist';
import { loadTaskData, parseShard } from '../../client-node/data/load-task-data';
import { shardIndices } from '../../client-node/data/shard';
import type { Dataset } from '../../shared/data/dataset';
import { isCohortError } from '../../shared/errors';
import { idxBytes, tempFolder } from './data-fixtures';
import { describeRequiring } from '../helpers/requires';

function labelCounts(data: Dataset): number[] {
  const counts = new Array<number>(data.classes).fill(0);
  for (const label of data.labels) counts[label]!++;
  return counts;
}

describe('the bundled MNIST', () => {
  it('has 60,000 + 10,000 28x28 grayscale images with labels 0..9', async () => {
    const { train, test } = await loadMnist();
    expect(train).toMatchObject({ count: 60000, shape: [28, 28, 1], classes: 10 });
    expect(test).toMatchObject({ count: 10000, shape: [28, 28, 1], classes: 10 });
    expect(train.images.length).toBe(60000 * 784);
    for (const data of [train, test]) {
      expect(data.labels.reduce((a, b) => Math.max(a, b), 0)).toBe(9);
      expect(data.labels.reduce((a, b) => Math.min(a, b), 255)).toBe(0);
      // Every digit is well represented (MNIST has 5.4k-6.7k per class in train).
      for (const count of labelCounts(data)) expect(count).toBeGreaterThan(data.count / 20);
    }
    let max = 0;
    for (let i = 0; i < 784 * 100; i++) max = Math.max(max, train.images[i]!);
    expect(max).toBe(1);
    expect(train.images.every((v) => v >= 0 && v <= 1)).toBe(true);
  });
});

describe('shards', () => {
  it('are disjoint, cover everything, differ in size by at most one, and are deterministic', () => {
    const size = 103;
    const parts = [0, 1, 2, 3].map((index) => shardIndices(size, { index, count: 4 }, 7));
    const all = parts.flatMap((p) => Array.from(p)).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: size }, (_, i) => i));
    expect(parts.map((p) => p.length)).toEqual([25, 26, 26, 26]);
    expect(Array.from(shardIndices(size, { index: 2, count: 4 }, 7))).toEqual(
      Array.from(parts[2]!),
    );
    expect(Array.from(shardIndices(size, { index: 2, count: 4 }, 8))).not.toEqual(
      Array.from(parts[2]!),
    );
  });

  it('of MNIST via loadTaskData split train and test, IID (roughly class-balanced)', async () => {
    const shards = await Promise.all(
      [0, 1, 2].map((index) => loadTaskData('mnist', { shard: { index, count: 3 }, seed: 5 })),
    );
    expect(shards.map((s) => s.train.count)).toEqual([20000, 20000, 20000]);
    expect(shards.map((s) => s.test.count).reduce((a, b) => a + b)).toBe(10000);
    for (const { train } of shards) {
      for (const count of labelCounts(train)) expect(count).toBeGreaterThan(1500); // ~2000 each
    }
    // Disjoint: compare whole images (pixel sums) of the first examples of two shards.
    const fingerprint = (d: Dataset, i: number): string =>
      Array.from(d.images.subarray(i * 784, (i + 1) * 784)).join(',');
    const first = new Set(Array.from({ length: 200 }, (_, i) => fingerprint(shards[0]!.train, i)));
    const overlap = Array.from({ length: 200 }, (_, i) => fingerprint(shards[1]!.train, i)).filter(
      (f) => first.has(f),
    );
    expect(overlap.length).toBeLessThan(2); // MNIST has almost no exact duplicate images
  });

  it('limit caps train and test after sharding', async () => {
    const { train, test } = await loadTaskData('mnist', {
      shard: { index: 1, count: 2 },
      limit: 50,
    });
    expect([train.count, test.count]).toEqual([50, 50]);
  });

  it('refuses an impossible shard', async () => {
    const bad = await loadTaskData('mnist', { shard: { index: 3, count: 3 } }).catch(
      (e: unknown) => e,
    );
    expect(isCohortError(bad, 'CONFIG_INVALID')).toBe(true);
  });
});

describe('parseShard', () => {
  it('turns the 1-based CLI form into a 0-based shard', () => {
    expect(parseShard('1/3')).toEqual({ index: 0, count: 3 });
    expect(parseShard(' 3 / 3 ')).toEqual({ index: 2, count: 3 });
  });

  it.each(['0/3', '4/3', '1/0', '1', 'a/b', '1.5/3', '-1/3', ''])('rejects %j', (text) => {
    expect(() => parseShard(text)).toThrow(/--shard expects i\/n/);
    try {
      parseShard(text);
    } catch (error) {
      expect(isCohortError(error, 'CONFIG_INVALID')).toBe(true);
    }
  });
});

describe('loadTaskData with --data', () => {
  it('reads a local folder and reports the task model classes', async () => {
    const folder = tempFolder();
    try {
      folder.write('train-images-idx3-ubyte', idxBytes([2, 28, 28], new Array(2 * 784).fill(7)));
      folder.write('train-labels-idx1-ubyte', idxBytes([2], [1, 2]));
      const { train, test } = await loadTaskData('mnist', { data: folder.dir });
      expect(train).toMatchObject({ count: 2, classes: 10, shape: [28, 28, 1] });
      expect(test.count).toBe(0);
      const wrongShape = await loadTaskData('cifar10', { data: folder.dir }).catch(
        (e: unknown) => e,
      );
      expect(isCohortError(wrongShape, 'DATA_INVALID')).toBe(true);
    } finally {
      folder.cleanup();
    }
  });
});

const TEAM_CIFAR10 = resolve(__dirname, '../../../shared/data/cifar10');
describeRequiring(
  "the team's CIFAR-10 subset (../shared/data/cifar10)",
  existsSync(TEAM_CIFAR10)
    ? { met: true, value: TEAM_CIFAR10 }
    : { met: false, reason: `${TEAM_CIFAR10} is absent (a user's clone has no team kit)` },
  (dir) => {
    it('parses with balanced classes', async () => {
      const { train, test } = await loadDataFolder(dir, { shape: [32, 32, 3] });
      expect([train.count, test.count]).toEqual([10000, 2000]);
      expect(labelCounts(train)).toEqual(new Array(10).fill(1000));
      expect(labelCounts(test)).toEqual(new Array(10).fill(200));
      // Round-robin order: the first ten records are classes 0..9.
      expect(Array.from(train.labels.subarray(0, 10))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });
  },
  { requiredInCi: false },
);
