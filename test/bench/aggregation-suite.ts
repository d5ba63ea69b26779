/**
 * "aggregation": throughput of the coordinator's per-round data path on model-sized vectors
 * (0.1M and 1.2M floats): folding client updates into StreamingWeightedMean, and the binary
 * weight codec (encode, decode, hash). Each is timed next to the naive way a first version
 * would do it (per-client buffers averaged with reduce; JSON number arrays), in the same run.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { StreamingWeightedMean } from '../../shared/aggregation/streaming-weighted-mean';
import { createRng } from '../../shared/random';
import { addMask, setPrgBackend } from '../../shared/secagg/prg';
import type { WeightManifest } from '../../shared/weights/codec';
import { bytesToFloats, floatsToBytes, hashWeights } from '../../shared/weights/codec';
import type { BenchRow, BenchSuite, SuiteContext, SuiteResult } from './bench-types';
import { measure } from './measure';
import type { Measurement, MeasureOptions } from './measure';

/** One client's update as the coordinator receives it. */
interface Update {
  vector: Float32Array;
  weight: number;
}

/** The aggregation and codec suite. */
export const aggregationSuite: BenchSuite = {
  name: 'aggregation',
  description:
    'StreamingWeightedMean and the weight codec (floatsToBytes, bytesToFloats, hashWeights) ' +
    'on 0.1M and 1.2M floats vs naive per-client buffers and JSON arrays',
  run: runAggregationSuite,
};

const SIZES = [100_000, 1_200_000];

async function runAggregationSuite(context: SuiteContext): Promise<SuiteResult> {
  const clients = context.quick ? 4 : 10;
  const timing: MeasureOptions = context.quick
    ? { minRuns: 2, minTimeMs: 100 }
    : { minRuns: 5, minTimeMs: 600 };
  const rows: BenchRow[] = [];
  const notes: string[] = [];

  for (const length of SIZES) {
    const updates = makeUpdates(length, clients, length);
    context.progress(`aggregation: weighted mean of ${clients} x ${length} floats`);
    rows.push(...(await meanRows(updates, timing, notes)));
    context.progress(`aggregation: codec on ${length} floats`);
    rows.push(...(await codecRows(updates[0]!.vector, timing, notes)));
    context.progress(`aggregation: mask generation on ${length} elements`);
    rows.push(...(await maskRows(length, timing)));
  }

  notes.push(
    'MB/s counts float32 payload bytes (4 per parameter, times the clients for the mean), so ' +
      'rows of one operation compare directly; speedup = naive time / Cohort time.',
    'Naive mean: keeps a copy of every update, then one Array.reduce over the clients per ' +
      'parameter (memory grows with the cohort). Naive codec: JSON.stringify(Array.from(floats)), ' +
      'Float32Array.from(JSON.parse(text)), SHA-256 (node:crypto) of the JSON text.',
    'Mask rows: addMask (target += PRG(seed) mod 2^32) under each PRG backend; speedup = the ' +
      'time of a bare AES-256-CTR keystream from node:crypto (64 KiB calls, nothing added) / ' +
      "addMask's time, so 1 would be the machine's single-core AES speed. The copy row under " +
      'each weighted mean is the memory-bandwidth ceiling for those bytes.',
    'floatsToBytes and aligned bytesToFloats return zero-copy views on little-endian hosts ' +
      '(constant time, so no MB/s); the unaligned decode (a Node Buffer at an odd offset, as ' +
      'socket.io may hand over) must copy.',
  );
  return {
    columns: [
      { key: 'operation', label: 'operation' },
      { key: 'implementation', label: 'implementation' },
      { key: 'params', label: 'params' },
      { key: 'ms', label: 'ms/op (median)' },
      { key: 'mbPerSec', label: 'MB/s' },
      { key: 'speedup', label: 'speedup' },
      { key: 'note', label: 'note' },
    ],
    rows,
    notes,
    details: { clients, sizes: SIZES, timing },
  };
}

async function meanRows(
  updates: Update[],
  timing: MeasureOptions,
  notes: string[],
): Promise<BenchRow[]> {
  const length = updates[0]!.vector.length;
  const payload = updates.length * length * 4;
  const cohort = await measure(() => streamingMean(updates), timing);
  const naive = await measure(() => naiveMean(updates), timing);
  const difference = maxAbsDifference(streamingMean(updates), naiveMean(updates));
  if (difference > 1e-6) {
    notes.push(`WARNING: streaming and naive means differ by ${difference} at ${length} params`);
  }
  const operation = `weighted mean, ${updates.length} clients`;
  const held = (bytes: number): string => `holds ${(bytes / 2 ** 20).toFixed(1)} MiB`;
  const row = rowMaker(length, payload);
  const copy = await measure(() => {
    const target = new Float32Array(length);
    for (const update of updates) target.set(update.vector);
  }, timing);
  return [
    row(operation, 'StreamingWeightedMean', cohort, naive, held(length * 8)),
    row(operation, 'naive: buffers + reduce', naive, null, held(payload)),
    row(operation, 'ceiling: Float32Array copy', copy, null, 'same bytes, no arithmetic'),
  ];
}

async function codecRows(
  floats: Float32Array,
  timing: MeasureOptions,
  notes: string[],
): Promise<BenchRow[]> {
  const length = floats.length;
  const payload = length * 4;
  const manifest: WeightManifest = { entries: [{ name: 'weights', shape: [length] }], length };
  const json = JSON.stringify(Array.from(floats));
  const aligned = floatsToBytes(floats).slice();
  const unaligned = Buffer.alloc(aligned.length + 1).subarray(1);
  unaligned.set(aligned);
  const decodeProblems = (['aligned', 'unaligned'] as const).filter(
    (kind) => !sameFloats(bytesToFloats(kind === 'aligned' ? aligned : unaligned), floats),
  );
  for (const kind of decodeProblems) {
    notes.push(
      `WARNING: bytesToFloats on ${kind === 'aligned' ? 'an aligned' : 'an unaligned Node Buffer'} ` +
        `(${length} floats) returned different floats than were encoded: a codec bug; ` +
        'its timing below measures a wrong result.',
    );
  }
  const wrong = (kind: 'aligned' | 'unaligned', note: string): string =>
    decodeProblems.includes(kind) ? `WRONG RESULT (${note})` : note;

  const encode = await measure(() => floatsToBytes(floats), timing);
  const encodeNaive = await measure(() => JSON.stringify(Array.from(floats)), timing);
  const decode = await measure(() => bytesToFloats(aligned), timing);
  const decodeCopy = await measure(() => bytesToFloats(unaligned), timing);
  const decodeNaive = await measure(() => Float32Array.from(JSON.parse(json) as number[]), timing);
  const hash = await measure(() => hashWeights(manifest, floats), timing);
  const hashNaive = await measure(
    () =>
      createHash('sha256')
        .update(JSON.stringify(Array.from(floats)))
        .digest('hex'),
    timing,
  );
  const wire = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(2)} MiB on the wire`;
  const row = rowMaker(length, payload);
  return [
    constantTime(row('encode', 'floatsToBytes', encode, null, `view; ${wire(payload)}`)),
    row('encode', 'naive: JSON array', encodeNaive, null, wire(json.length)),
    constantTime(row('decode', 'bytesToFloats, aligned', decode, null, wrong('aligned', 'view'))),
    row('decode', 'bytesToFloats, unaligned', decodeCopy, decodeNaive, wrong('unaligned', 'copy')),
    row('decode', 'naive: JSON.parse', decodeNaive, null, ''),
    row('hash', 'hashWeights (WebCrypto)', hash, hashNaive, 'manifest + bytes'),
    row('hash', 'naive: sha256 of JSON', hashNaive, null, 'includes stringify'),
  ];
}

/** addMask under each PRG backend next to a bare node:crypto AES-256-CTR keystream. */
async function maskRows(length: number, timing: MeasureOptions): Promise<BenchRow[]> {
  const seed = new Uint8Array(32).map((_, i) => i * 7);
  const target = new Uint32Array(length);
  const key = new Uint8Array(32).fill(1);
  const zeros = new Uint8Array(1 << 16);
  const keystream = await measure(() => {
    const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
    for (let offset = 0; offset < length * 4; offset += zeros.length) {
      cipher.update(zeros.subarray(0, Math.min(zeros.length, length * 4 - offset)));
    }
  }, timing);
  const timed = async (backend: 'node-cipher' | 'webcrypto'): Promise<Measurement> => {
    setPrgBackend(backend);
    try {
      return await measure(() => addMask(target, seed, 1), timing);
    } finally {
      setPrgBackend('auto');
    }
  };
  const viaNode = await timed('node-cipher');
  const viaWebCrypto = await timed('webcrypto');
  const row = rowMaker(length, length * 4);
  return [
    row('add mask', 'addMask, node:crypto cipher', viaNode, keystream, 'default in Node'),
    row('add mask', 'addMask, WebCrypto', viaWebCrypto, keystream, 'browsers'),
    row(
      'add mask',
      'ceiling: AES-256-CTR keystream',
      keystream,
      null,
      'node:crypto, nothing added',
    ),
  ];
}

/** Builds rows for one vector length; `naive` (when given) is the baseline for the speedup. */
function rowMaker(
  params: number,
  payloadBytes: number,
): (
  operation: string,
  implementation: string,
  timing: Measurement,
  naive: Measurement | null,
  note: string,
) => BenchRow {
  return (operation, implementation, timing, naive, note) => ({
    operation,
    implementation,
    params,
    ms: timing.medianMs,
    mbPerSec: payloadBytes / 1e6 / (timing.medianMs / 1000),
    speedup: naive === null ? null : naive.medianMs / timing.medianMs,
    note,
  });
}

/** A zero-copy view costs the same at any size: MB/s and a speedup would be meaningless. */
function constantTime(row: BenchRow): BenchRow {
  return { ...row, mbPerSec: null, speedup: null };
}

/** `clients` updates of `length` floats in [-0.05, 0.05) with weights 10..109 (seeded). */
function makeUpdates(length: number, clients: number, seed: number): Update[] {
  const rng = createRng(seed);
  return Array.from({ length: clients }, () => {
    const vector = new Float32Array(length);
    for (let i = 0; i < length; i++) vector[i] = (rng.next() - 0.5) * 0.1;
    return { vector, weight: 10 + rng.int(100) };
  });
}

function streamingMean(updates: Update[]): Float32Array {
  const mean = new StreamingWeightedMean(updates[0]!.vector.length);
  for (const update of updates) mean.add(update.vector, update.weight);
  return mean.mean();
}

/** The straightforward version: keep every update until the round ends, then reduce. */
function naiveMean(updates: Update[]): Float32Array {
  const kept = updates.map((u) => ({ weight: u.weight, vector: u.vector.slice() }));
  const total = kept.reduce((sum, u) => sum + u.weight, 0);
  const out = new Float32Array(kept[0]!.vector.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = kept.reduce((sum, u) => sum + u.weight * u.vector[i]!, 0) / total;
  }
  return out;
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

function sameFloats(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}
