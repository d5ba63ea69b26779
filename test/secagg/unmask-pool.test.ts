import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCohortError } from '../../shared/errors';
import type { MaskTerm } from '../../shared/secagg';
import { addMask, runInMemorySecAggRound } from '../../shared/secagg';
import {
  MIN_PARALLEL_ELEMENTS,
  UnmaskWorkerPool,
  sliceBounds,
} from '../../coordinator/unmask-pool';
import { MODEL_HASH, makeClients, smallConfig } from './helpers';

/**
 * Unmasking on worker threads: each worker expands every mask over one slice of the vector
 * (AES-CTR started at that slice's block) and the slices are added at the end. The result must
 * be the inline result bit for bit, at lengths that do not divide evenly, in a whole round with
 * dropouts; and a worker that dies must fail the call without touching the accumulator.
 */

const WORKER = join(__dirname, '..', '..', 'dist', 'coordinator', 'unmask-worker.js');

function seedOf(i: number): Uint8Array {
  return new Uint8Array(32).map((_, j) => (i * 31 + j * 7) & 0xff);
}

function termsOf(count: number): MaskTerm[] {
  return Array.from({ length: count }, (_, i) => ({
    seed: seedOf(i),
    sign: i % 3 === 0 ? -1 : 1,
  }));
}

describe('sliceBounds', () => {
  it('splits into block-aligned slices that cover the vector exactly once', () => {
    expect(sliceBounds(1_200_000, 2)).toEqual([
      { start: 0, length: 600_000 },
      { start: 600_000, length: 600_000 },
    ]);
    // 196,610 elements in 3: step ceil(196610 / 3 / 4) * 4 = 65,540.
    expect(sliceBounds(196_610, 3)).toEqual([
      { start: 0, length: 65_540 },
      { start: 65_540, length: 65_540 },
      { start: 131_080, length: 65_530 },
    ]);
  });

  it('never makes slices much shorter than MIN_PARALLEL_ELEMENTS, and always at least one', () => {
    expect(sliceBounds(MIN_PARALLEL_ELEMENTS * 2 - 1, 8)).toHaveLength(1);
    expect(sliceBounds(MIN_PARALLEL_ELEMENTS * 2, 8)).toHaveLength(2);
    expect(sliceBounds(10, 4)).toEqual([{ start: 0, length: 10 }]);
  });
});

describe('UnmaskWorkerPool', () => {
  let pool: UnmaskWorkerPool;

  beforeAll(() => {
    // npm test builds before jest; the worker runs the compiled code.
    expect(existsSync(WORKER)).toBe(true);
    pool = new UnmaskWorkerPool({ threads: 2, workerScript: WORKER });
  });

  afterAll(async () => {
    await pool.close();
  });

  it.each([MIN_PARALLEL_ELEMENTS * 2 + 3, 300_001])(
    'removes masks over %i elements exactly as the inline loop does',
    async (length) => {
      const start = new Uint32Array(length).map((_, i) => (i * 2654435761) >>> 0);
      const inline = start.slice();
      const parallel = start.slice();
      for (const term of termsOf(7)) await addMask(inline, term.seed, term.sign);
      await pool.removeMasks(parallel, termsOf(7));
      expect(pool.threads).toBe(2);
      expect(Buffer.from(parallel.buffer).equals(Buffer.from(inline.buffer))).toBe(true);
      // And the masks really were applied: removing them again with opposite signs restores.
      const undo = termsOf(7).map((t) => ({ seed: t.seed, sign: t.sign === 1 ? -1 : 1 }) as const);
      await pool.removeMasks(parallel, undo);
      expect(Buffer.from(parallel.buffer).equals(Buffer.from(start.buffer))).toBe(true);
    },
  );

  it('decodes a whole round with dropouts to the same mean as inline unmasking', async () => {
    const length = MIN_PARALLEL_ELEMENTS * 2 + 5;
    const config = smallConfig(8, length);
    const round = (removeMasks?: UnmaskWorkerPool['removeMasks']) => {
      const clients = makeClients(8, length, 42);
      clients[1]!.dropAt = 'maskedInput'; // its pairwise masks must be rebuilt and removed
      clients[5]!.dropAt = 'maskedInput';
      return runInMemorySecAggRound({
        roundId: 'pool-round',
        modelHash: MODEL_HASH,
        config,
        clients,
        ...(removeMasks ? { removeMasks } : {}),
      });
    };
    const viaPool = await round(pool.removeMasks);
    const inline = await round();
    expect(viaPool.error).toBeUndefined();
    expect(viaPool.result!.dropped).toHaveLength(2);
    expect(viaPool.result!.totalWeight).toBe(inline.result!.totalWeight);
    expect(Array.from(viaPool.result!.weightedMean)).toEqual(
      Array.from(inline.result!.weightedMean),
    );
  });

  it('a dying worker fails the call with INTERNAL and leaves the accumulator untouched', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-unmask-'));
    const script = join(dir, 'dies.js');
    writeFileSync(
      script,
      "require('node:worker_threads').parentPort.on('message', () => process.exit(3));\n",
    );
    const broken = new UnmaskWorkerPool({ threads: 2, workerScript: script });
    try {
      const accumulator = new Uint32Array(MIN_PARALLEL_ELEMENTS * 2).fill(7);
      const error = await broken.removeMasks(accumulator, termsOf(2)).catch((e: unknown) => e);
      expect(isCohortError(error) ? error.code : error).toBe('INTERNAL');
      expect(accumulator.every((v) => v === 7)).toBe(true);
    } finally {
      await broken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('small vectors and threads: 0 run inline, and a closed pool refuses work', async () => {
    const inlinePool = new UnmaskWorkerPool({ threads: 0 });
    expect(inlinePool.threads).toBe(0);
    const target = new Uint32Array(12);
    await inlinePool.removeMasks(target, termsOf(1));
    const expected = new Uint32Array(12);
    await addMask(expected, seedOf(0), -1);
    expect(Array.from(target)).toEqual(Array.from(expected));
    await inlinePool.close();
    const error = await inlinePool.removeMasks(target, termsOf(1)).catch((e: unknown) => e);
    expect(isCohortError(error) ? error.code : error).toBe('INTERNAL');
  });
});
