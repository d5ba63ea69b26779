/**
 * "aggregation": throughput of the coordinator's per-round data path on model-sized vectors
 * (0.1M and 1.2M floats): folding client updates into StreamingWeightedMean, and the binary
 * weight codec (encode, decode, hash). Each is timed next to the naive way a first version
 * would do it (per-client buffers averaged with reduce; JSON number arrays), in the same run.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { StreamingWeightedMean } from '../../shared/aggregation/streaming-weighted-mean';
import { createRng } from '../../shared/random';
import { addPackedInto, packLowBits } from '../../shared/secagg/packing';
import { addMask, setPrgBackend, wrapAddInto } from '../../shared/secagg/prg';
import { allocateWrapVector, setSimdMode, simdAvailable } from '../../shared/simd/kernels';
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
    'StreamingWeightedMean, the secure uint32 and packed 24-bit folds and the weight codec (floatsToBytes, ' +
    'bytesToFloats, hashWeights) on 0.1M and 1.2M floats vs naive per-client buffers, the JS ' +
    'loops, JSON arrays and a plain copy',
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
    rows.push(...(await foldRows(updates, timing)));
    context.progress(`aggregation: secure fold of ${clients} x ${length} masked elements`);
    rows.push(...(await secureFoldRows(length, clients, timing, notes)));
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
    'Mask rows: addMask (target += PRG(seed) mod 2^32) under each PRG backend, into a plain ' +
      'Uint32Array (JS loop) or an allocateWrapVector target (SIMD wrap-add); speedup = the ' +
      'time of a bare AES-256-CTR keystream from node:crypto (64 KiB calls, nothing added) / ' +
      "addMask's time, so 1 would be the machine's single-core AES speed. The copy row under " +
      'each weighted mean is the memory-bandwidth ceiling for those bytes.',
    'Bandwidth: a Float32Array copy moves 8 bytes per element (4 read + 4 written). The ' +
      'weighted fold moves 20 (4 read of the update, 8 read + 8 written of the float64 sum), so ' +
      'at the same bytes/s it could reach at best ~0.4x the copy speed per element; the SIMD ' +
      'kernel also reads each update twice through a 64 KiB scratch (finiteness scan first, ' +
      'then the fold), 24 bytes. The secure uint32 fold moves 12 (4 read of the input, 4 read ' +
      '+ 4 written of the accumulator) plus the 8 of its scratch copy in cache: ceiling ~0.67x. ' +
      'The packed 24-bit fold moves 11 (3 read of the packed input, 4 + 4 of the accumulator) ' +
      'plus 6 of its scratch copy in cache, against the 6 of a copy of the same packed bytes ' +
      '(its MB/s counts those 3 bytes an element): ceiling ~0.55x copy speed (16 bits: 10 ' +
      'against 4, ~0.4x). ' +
      '"copy speed" in a note = copy time / that row\'s time for the same elements.',
    `SIMD rows: WebAssembly SIMD kernels (shared/simd) ${simdAvailable() ? 'ran' : 'were NOT available, so the JS loops ran'}; ` +
      'the JS-loop rows force the fallback (setSimdMode("js")) in the same run. Secure fold: ' +
      'wrapAddInto of each masked input into one accumulator, from allocateWrapVector (SIMD) or ' +
      'a plain Uint32Array (JS loop); speedup = JS loop time / SIMD time. Packed 24-bit fold: ' +
      "addPackedInto of each input's low 3 bytes an element, the SIMD unpack-and-add (16 bytes " +
      'loaded at a 12-byte stride, i8x16.swizzle to four u32 lanes, i32x4.add) vs the JS byte ' +
      'loop. Weighted fold: ' +
      'StreamingWeightedMean.add of every update into an existing accumulator (the per-update ' +
      'cost of a round); the weighted-mean rows add a fresh accumulator and mean(). A fresh ' +
      'wasm memory pays first-touch page faults (~3 ms per MiB on this machine) where a plain ' +
      'Float64Array mostly reuses freed heap pages; a SIMD accumulator recycles its memory ' +
      'after release() (the "+ release()" row: each round releases its mean once taken) or ' +
      'once the previous one is garbage-collected, which this back-to-back loop rarely allows, ' +
      'so the plain "(SIMD)" row is its worst case.',
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
  const released = await measure(() => streamingMean(updates, true), timing);
  setSimdMode('js');
  const jsLoops = await measure(() => streamingMean(updates), timing);
  setSimdMode('auto');
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
  const copySpeed = (m: Measurement): string =>
    `${(copy.medianMs / m.medianMs).toFixed(2)}x copy speed`;
  return [
    row(
      operation,
      'StreamingWeightedMean (SIMD)',
      cohort,
      naive,
      `${held(length * (simdAvailable() ? 12 : 8))} (sum + staging); ${copySpeed(cohort)}`,
    ),
    row(
      operation,
      'StreamingWeightedMean (SIMD) + release()',
      released,
      naive,
      `memory recycled; ${copySpeed(released)}`,
    ),
    row(
      operation,
      'StreamingWeightedMean, JS loops',
      jsLoops,
      naive,
      `${held(length * 8)}; ${copySpeed(jsLoops)}`,
    ),
    row(operation, 'naive: buffers + reduce', naive, null, held(payload)),
    row(operation, 'ceiling: Float32Array copy', copy, null, '8 B/element, no arithmetic'),
  ];
}

/**
 * The fold alone, as the coordinator runs it once per update all round: StreamingWeightedMean.add
 * into an accumulator that already exists (its pages touched), SIMD vs the JS loops, next to a
 * copy of the same updates into an existing Float32Array.
 */
async function foldRows(updates: Update[], timing: MeasureOptions): Promise<BenchRow[]> {
  const length = updates[0]!.vector.length;
  const simdMean = new StreamingWeightedMean(length);
  setSimdMode('js');
  const jsMean = new StreamingWeightedMean(length); // a plain Float64Array accumulator
  setSimdMode('auto');
  const foldAll = (mean: StreamingWeightedMean) => (): void => {
    for (const update of updates) mean.add(update.vector, update.weight);
  };
  const simd = await measure(foldAll(simdMean), timing);
  setSimdMode('js');
  const jsLoops = await measure(foldAll(jsMean), timing);
  setSimdMode('auto');
  const target = new Float32Array(length);
  const copy = await measure(() => {
    for (const update of updates) target.set(update.vector);
  }, timing);
  const operation = `weighted fold, ${updates.length} updates`;
  const row = rowMaker(length, updates.length * length * 4);
  const copySpeed = (m: Measurement): string =>
    `${(copy.medianMs / m.medianMs).toFixed(2)}x copy speed; 20 B/element`;
  return [
    row(operation, 'StreamingWeightedMean.add, SIMD', simd, jsLoops, copySpeed(simd)),
    row(operation, 'StreamingWeightedMean.add, JS loops', jsLoops, null, copySpeed(jsLoops)),
    row(operation, 'ceiling: Float32Array copy', copy, null, '8 B/element, no arithmetic'),
  ];
}

/**
 * The coordinator's secure fold: `inputs` masked uint32 vectors wrap-added (mod 2^32) into one
 * accumulator with wrapAddInto, SIMD (accumulator from allocateWrapVector) vs the JS loop (a
 * plain Uint32Array), next to a plain copy of the same inputs.
 */
async function secureFoldRows(
  length: number,
  inputs: number,
  timing: MeasureOptions,
  notes: string[],
): Promise<BenchRow[]> {
  const rng = createRng(length + 1);
  const masked = Array.from({ length: inputs }, () =>
    Uint32Array.from({ length }, () => Math.floor(rng.next() * 2 ** 32)),
  );
  const foldAll = (accumulator: Uint32Array) => (): void => {
    for (const input of masked) wrapAddInto(accumulator, 0, input, 1);
  };
  const simdAccumulator = allocateWrapVector(length);
  const plainAccumulator = new Uint32Array(length);
  foldAll(simdAccumulator)();
  foldAll(plainAccumulator)();
  if (!simdAccumulator.every((v, i) => v === plainAccumulator[i])) {
    notes.push(`WARNING: SIMD and JS secure folds differ at ${length} elements: a kernel bug`);
  }
  const simd = await measure(foldAll(simdAccumulator), timing);
  const jsLoop = await measure(foldAll(plainAccumulator), timing);
  const target = new Uint32Array(length);
  const copy = await measure(() => {
    for (const input of masked) target.set(input);
  }, timing);
  const operation = `secure fold, ${inputs} inputs`;
  const row = rowMaker(length, inputs * length * 4);
  const copySpeed = (m: Measurement): string =>
    `${(copy.medianMs / m.medianMs).toFixed(2)}x copy speed`;
  return [
    row(operation, 'wrapAddInto, SIMD', simd, jsLoop, `${copySpeed(simd)}; 12 B/element`),
    row(operation, 'wrapAddInto, JS loop', jsLoop, null, `${copySpeed(jsLoop)}; 12 B/element`),
    row(operation, 'ceiling: Uint32Array copy', copy, null, '8 B/element, no arithmetic'),
    ...(await packedFoldRows(masked, timing, notes)),
  ];
}

/**
 * The same fold from the default 24-bit wire (`--secure-bits auto`): addPackedInto of each
 * input's packed low 24 bits (3 bytes an element, as they arrive) into one accumulator, the
 * SIMD unpack-and-add (allocateWrapVector) vs the JS byte loop (a plain Uint32Array), next to a
 * plain copy of the same packed bytes.
 */
async function packedFoldRows(
  masked: Uint32Array[],
  timing: MeasureOptions,
  notes: string[],
): Promise<BenchRow[]> {
  const length = masked[0]!.length;
  const packed = masked.map((input) => packLowBits(input, 24).slice());
  const foldAll = (accumulator: Uint32Array) => (): void => {
    for (const input of packed) addPackedInto(accumulator, input, 24);
  };
  const simdAccumulator = allocateWrapVector(length);
  const plainAccumulator = new Uint32Array(length);
  foldAll(simdAccumulator)();
  foldAll(plainAccumulator)();
  if (!simdAccumulator.every((v, i) => v === plainAccumulator[i])) {
    notes.push(`WARNING: SIMD and JS 24-bit folds differ at ${length} elements: a kernel bug`);
  }
  const simd = await measure(foldAll(simdAccumulator), timing);
  const jsLoop = await measure(foldAll(plainAccumulator), timing);
  const target = new Uint8Array(length * 3);
  const copy = await measure(() => {
    for (const input of packed) target.set(input);
  }, timing);
  const operation = `secure fold, ${packed.length} packed 24-bit inputs`;
  const row = rowMaker(length, packed.length * length * 3);
  const copySpeed = (m: Measurement): string =>
    `${(copy.medianMs / m.medianMs).toFixed(2)}x copy speed; 11 B/element`;
  return [
    row(operation, 'addPackedInto, SIMD', simd, jsLoop, copySpeed(simd)),
    row(operation, 'addPackedInto, JS loop', jsLoop, null, copySpeed(jsLoop)),
    row(operation, 'ceiling: copy of the packed bytes', copy, null, '6 B/element, no arithmetic'),
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
  const simdTarget = allocateWrapVector(length);
  const timed = async (
    backend: 'node-cipher' | 'webcrypto',
    into: Uint32Array = target,
  ): Promise<Measurement> => {
    setPrgBackend(backend);
    try {
      return await measure(() => addMask(into, seed, 1), timing);
    } finally {
      setPrgBackend('auto');
    }
  };
  const viaNode = await timed('node-cipher');
  const viaNodeSimd = await timed('node-cipher', simdTarget);
  const viaWebCryptoSimd = await timed('webcrypto', simdTarget);
  const viaWebCrypto = await timed('webcrypto');
  const row = rowMaker(length, length * 4);
  return [
    row('add mask', 'addMask, node:crypto cipher', viaNode, keystream, 'plain Uint32Array'),
    row('add mask', 'addMask, node:crypto, SIMD', viaNodeSimd, keystream, 'allocateWrapVector'),
    row('add mask', 'addMask, WebCrypto', viaWebCrypto, keystream, 'browsers; plain'),
    row('add mask', 'addMask, WebCrypto, SIMD', viaWebCryptoSimd, keystream, 'allocateWrapVector'),
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

/** One round's mean; with `release`, the accumulator goes back for the next round's. */
function streamingMean(updates: Update[], release = false): Float32Array {
  const mean = new StreamingWeightedMean(updates[0]!.vector.length);
  for (const update of updates) mean.add(update.vector, update.weight);
  const result = mean.mean();
  if (release) mean.release();
  return result;
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
