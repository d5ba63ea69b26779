/**
 * WebAssembly SIMD kernels for the hot vector loops of aggregation and masking, built at load
 * time by the encoder in ./wasm-encoder (no toolchain, no dependency). V8 does not vectorize
 * JavaScript loops; these process 128 bits per instruction.
 *
 * Data has to be in wasm linear memory, so the vectors the kernels update live there: each
 * {@link allocateWrapVector} / {@link allocateFoldAccumulator} call makes one kernel instance
 * with its own memory, sized once for a scratch region plus the vector and never grown
 * (growing would detach the views handed out). Sources are copied into the scratch region in
 * cache-sized chunks (64 KiB) and processed there; a fold accumulator's scratch is as long as
 * the accumulator (up to a limit) so an update is copied once for the check and the fold.
 * Where WebAssembly SIMD is unavailable (checked once with WebAssembly.validate), the
 * allocators return plain typed arrays and every kernel runs its JavaScript loop, with
 * identical results. The packed secure-aggregation wire (16 or 24
 * bits an element, shared/secagg/packing.ts) is unpacked and added, or packed, the same way:
 * {@link simdAddPacked} and {@link simdPackLowBits}.
 */
import { CohortError } from '../errors';
import type { FuncDef } from './wasm-encoder';
import { F64, I32, V128, encodeModule, op } from './wasm-encoder';

/** Elements (4 bytes each) of a source copied into the scratch region per kernel call. */
export const SCRATCH_ELEMENTS = 1 << 14;

/**
 * Below this many elements a kernel call (a subarray, a copy into scratch, a call into wasm)
 * costs more than the JavaScript loop it replaces (~120 ns a call here; crossover ~100).
 */
export const SIMD_MIN_ELEMENTS = 128;

const PAGE_BYTES = 65536;

/**
 * Fold accumulators up to this many elements also get a staging region of their own length
 * (4 bytes an element beside the sum's 8): the finiteness scan copies each update into it
 * chunk by chunk and the fold then reads it from there, one copy instead of two (measured
 * 0.59 -> 0.42 ns/element at 1.2M). Longer ones use the 64 KiB scratch for both passes.
 */
let foldStagingLimit = 1 << 22;

/** Changes the staging limit above; for tests of both fold paths. Returns the previous one. */
export function setFoldStagingLimit(elements: number): number {
  const previous = foldStagingLimit;
  foldStagingLimit = elements;
  return previous;
}
/** Largest memory a kernel instance asks for (wasm32 addresses 4 GiB; stay well inside). */
const MAX_MEMORY_BYTES = 2 ** 31;

/** Exponent bits of a float32: all ones means Infinity or NaN. */
const F32_EXPONENT = 0x7f800000;

interface KernelExports {
  /** dst[i] += src[i] (mod 2^32) for i < n; byte addresses. */
  wrapAdd: (dst: number, src: number, n: number) => void;
  /** dst[i] -= src[i] (mod 2^32) for i < n. */
  wrapSub: (dst: number, src: number, n: number) => void;
  /** Index of the first non-finite float32 of src[0..n), or -1. */
  firstNonFinite: (src: number, n: number) => number;
  /** sum[i] = sum[i] + w * f64(src[i]) for i < n (sum float64, src float32). */
  weightedFold: (sum: number, src: number, n: number, w: number) => void;
  /** dst[i] += the i-th little-endian 3-byte element at src (mod 2^32) for i < n. */
  unpackAdd24: (dst: number, src: number, n: number) => void;
  /** dst[i] += the i-th little-endian 2-byte element at src (mod 2^32) for i < n. */
  unpackAdd16: (dst: number, src: number, n: number) => void;
  /** The low 3 bytes of each u32 src[i], i < n, packed little-endian at dst (+4 bytes slack). */
  pack24: (dst: number, src: number, n: number) => void;
  /** The low 2 bytes of each u32 src[i], i < n, packed little-endian at dst. */
  pack16: (dst: number, src: number, n: number) => void;
}

interface KernelInstance {
  exports: KernelExports;
  scratchU32: Uint32Array;
  scratchF32: Float32Array;
  scratchU8: Uint8Array;
}

// Locals are numbered parameters first. Each loop below is
//   block; loop; (ptr >= end) br_if 1; body; advance; br 0; end; end
function whileBelow(ptr: number, end: number, body: number[]): number[] {
  return [
    ...op.block(),
    ...op.loop(),
    ...op.localGet(ptr),
    ...op.localGet(end),
    ...op.i32GeU(),
    ...op.brIf(1),
    ...body,
    ...op.br(0),
    ...op.end(),
    ...op.end(),
  ];
}

function addTo(local: number, bytes: number): number[] {
  return [...op.localGet(local), ...op.i32Const(bytes), ...op.i32Add(), ...op.localSet(local)];
}

/** end = base + (n & mask) * 4 */
function endPointer(base: number, n: number, mask: number, out: number): number[] {
  return [
    ...op.localGet(base),
    ...op.localGet(n),
    ...op.i32Const(mask),
    ...op.i32And(),
    ...op.i32Const(2),
    ...op.i32Shl(),
    ...op.i32Add(),
    ...op.localSet(out),
  ];
}

/** wrapAdd / wrapSub: (dst, src, n), locals end16, end; 16 elements per vector iteration. */
function wrapKernel(subtract: boolean): FuncDef {
  const [dst, src, n, end16, end] = [0, 1, 2, 3, 4];
  const lanes = subtract ? op.i32x4Sub() : op.i32x4Add();
  const vectorBody: number[] = [];
  for (let k = 0; k < 4; k++) {
    vectorBody.push(
      ...op.localGet(dst),
      ...op.localGet(dst),
      ...op.v128Load(16 * k),
      ...op.localGet(src),
      ...op.v128Load(16 * k),
      ...lanes,
      ...op.v128Store(16 * k),
    );
  }
  vectorBody.push(...addTo(dst, 64), ...addTo(src, 64));
  const scalarBody = [
    ...op.localGet(dst),
    ...op.localGet(dst),
    ...op.i32Load(),
    ...op.localGet(src),
    ...op.i32Load(),
    ...(subtract ? op.i32Sub() : op.i32Add()),
    ...op.i32Store(),
    ...addTo(dst, 4),
    ...addTo(src, 4),
  ];
  return {
    type: 0,
    locals: [I32, I32],
    body: [
      ...endPointer(src, n, ~15, end16),
      ...endPointer(src, n, -1, end),
      ...whileBelow(src, end16, vectorBody),
      ...whileBelow(src, end, scalarBody),
    ],
  };
}

/**
 * firstNonFinite(src, n) -> index or -1: sixteen elements per step test their exponent bits
 * together (i32x4.eq against all ones, OR-ed, v128.any_true); the step that has one, and the
 * tail, are searched element by element.
 */
function firstNonFiniteKernel(): FuncDef {
  const [src, n, i, end16, exponent] = [0, 1, 2, 3, 4];
  const isNonFinite = (offset: number): number[] => [
    ...op.localGet(src),
    ...op.v128Load(offset),
    ...op.localGet(exponent),
    ...op.v128And(),
    ...op.localGet(exponent),
    ...op.i32x4Eq(),
  ];
  const vectorBody = [
    ...isNonFinite(0),
    ...isNonFinite(16),
    ...op.v128Or(),
    ...isNonFinite(32),
    ...isNonFinite(48),
    ...op.v128Or(),
    ...op.v128Or(),
    ...op.v128AnyTrue(),
    ...op.brIf(1), // out of the loop and its block: the scalar search starts at this step
    ...addTo(src, 64),
    ...addTo(i, 16),
  ];
  const scalarBody = [
    ...op.localGet(src),
    ...op.i32Load(),
    ...op.i32Const(F32_EXPONENT),
    ...op.i32And(),
    ...op.i32Const(F32_EXPONENT),
    ...op.i32Eq(),
    ...op.if(),
    ...op.localGet(i),
    ...op.return(),
    ...op.end(),
    ...addTo(src, 4),
    ...addTo(i, 1),
  ];
  return {
    type: 1,
    locals: [I32, I32, V128],
    body: [
      ...op.i32Const(F32_EXPONENT),
      ...op.i32x4Splat(),
      ...op.localSet(exponent),
      ...op.localGet(n),
      ...op.i32Const(~15),
      ...op.i32And(),
      ...op.localSet(end16),
      ...whileBelow(i, end16, vectorBody),
      ...whileBelow(i, n, scalarBody),
      ...op.i32Const(-1),
    ],
  };
}

/**
 * weightedFold(sum, src, n, w): sum[i] = sum[i] + w * f64(src[i]), eight elements per step
 * (pairs of float32 loaded with v128.load64_zero, widened with f64x2.promote_low_f32x4), then
 * element by element. Separate multiply and add (wasm never fuses them), each rounded to
 * float64 exactly as the JavaScript `sum[i] += w * x[i]` is.
 */
function weightedFoldKernel(): FuncDef {
  const [sum, src, n, w, end8, end, weights] = [0, 1, 2, 3, 4, 5, 6];
  const vectorBody: number[] = [];
  for (let k = 0; k < 4; k++) {
    vectorBody.push(
      ...op.localGet(sum),
      ...op.localGet(sum),
      ...op.v128Load(16 * k),
      ...op.localGet(src),
      ...op.v128Load64Zero(8 * k),
      ...op.f64x2PromoteLowF32x4(),
      ...op.localGet(weights),
      ...op.f64x2Mul(),
      ...op.f64x2Add(),
      ...op.v128Store(16 * k),
    );
  }
  vectorBody.push(...addTo(sum, 64), ...addTo(src, 32));
  const scalarBody = [
    ...op.localGet(sum),
    ...op.localGet(sum),
    ...op.f64Load(),
    ...op.localGet(src),
    ...op.f32Load(),
    ...op.f64PromoteF32(),
    ...op.localGet(w),
    ...op.f64Mul(),
    ...op.f64Add(),
    ...op.f64Store(),
    ...addTo(sum, 8),
    ...addTo(src, 4),
  ];
  return {
    type: 2,
    locals: [I32, I32, V128],
    body: [
      ...op.localGet(w),
      ...op.f64x2Splat(),
      ...op.localSet(weights),
      ...endPointer(src, n, ~7, end8),
      ...endPointer(src, n, -1, end),
      ...whileBelow(src, end8, vectorBody),
      ...whileBelow(src, end, scalarBody),
    ],
  };
}

/** Swizzle lanes taking the 3-byte elements at 0, 3, 6, 9 into zero-extended u32 lanes. */
const UNPACK24_LANES = [0, 1, 2, 0x80, 3, 4, 5, 0x80, 6, 7, 8, 0x80, 9, 10, 11, 0x80];

/**
 * unpackAdd24 / unpackAdd16: (dst, src, n), dst[i] += the i-th little-endian 3- or 2-byte
 * element at src (mod 2^32), 16 elements per vector iteration, then element by element.
 * 24 bits: each group of four is one v128.load of 16 bytes at a 12-byte stride, i8x16.swizzle
 * with a constant mask (lanes 0x80 give the zero bytes; V8 emits a single pshufb for it), so
 * every load, and the scalar tail's i32.load, reads up to 4 bytes past the last element:
 * callers keep that slack after `src` (the scratch region, see simdAddPacked). 16 bits:
 * v128.load16x4_u widens four u16 in the load, reading exactly the packed bytes.
 */
function unpackAddKernel(width: 2 | 3): FuncDef {
  const [dst, src, n, end16, end, lanes] = [0, 1, 2, 3, 4, 5];
  const vectorBody: number[] = [];
  for (let k = 0; k < 4; k++) {
    const unpacked =
      width === 3
        ? [...op.localGet(src), ...op.v128Load(12 * k), ...op.localGet(lanes), ...op.i8x16Swizzle()]
        : [...op.localGet(src), ...op.v128Load16x4U(8 * k)];
    vectorBody.push(
      ...op.localGet(dst),
      ...op.localGet(dst),
      ...op.v128Load(16 * k),
      ...unpacked,
      ...op.i32x4Add(),
      ...op.v128Store(16 * k),
    );
  }
  vectorBody.push(...addTo(dst, 64), ...addTo(src, 16 * width));
  const element =
    width === 3
      ? [...op.localGet(src), ...op.i32Load(), ...op.i32Const(0xffffff), ...op.i32And()]
      : [...op.localGet(src), ...op.i32Load16U()];
  const scalarBody = [
    ...op.localGet(dst),
    ...op.localGet(dst),
    ...op.i32Load(),
    ...element,
    ...op.i32Add(),
    ...op.i32Store(),
    ...addTo(dst, 4),
    ...addTo(src, width),
  ];
  return {
    type: 0,
    locals: width === 3 ? [I32, I32, V128] : [I32, I32],
    body: [
      ...(width === 3 ? [...op.v128Const(UNPACK24_LANES), ...op.localSet(lanes)] : []),
      ...endPointer(dst, n, ~15, end16),
      ...endPointer(dst, n, -1, end),
      ...whileBelow(dst, end16, vectorBody),
      ...whileBelow(dst, end, scalarBody),
    ],
  };
}

/** Swizzle lanes taking the low 3 bytes of four u32 lanes into 12 packed bytes (then zeros). */
const PACK24_LANES = [0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 0x80, 0x80, 0x80, 0x80];

/** Shuffle lanes taking the low 2 bytes of the eight u32 lanes of two vectors, in order. */
const PACK16_LANES = [0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29];

/**
 * pack24 / pack16: (dst, src, n), the low 3 or 2 bytes of each u32 src[i] for i < n written
 * little-endian at dst, packed; 16 elements per vector iteration, then element by element.
 * 24 bits: four lanes swizzled into 12 bytes, stored as 16 at a 12-byte stride, each store's
 * last 4 (zero) bytes overwritten by the next; the scalar tail stores whole i32s at a 3-byte
 * stride the same way. So up to 4 bytes past the last packed byte are written: callers keep
 * that slack after `dst` (the scratch region, see simdPackLowBits). 16 bits: two vectors
 * shuffled into one, and i32.store16 in the tail, writing exactly the packed bytes.
 */
function packKernel(width: 2 | 3): FuncDef {
  const [dst, src, n, end16, end, lanes] = [0, 1, 2, 3, 4, 5];
  const vectorBody: number[] = [];
  if (width === 3) {
    for (let k = 0; k < 4; k++) {
      vectorBody.push(
        ...op.localGet(dst),
        ...op.localGet(src),
        ...op.v128Load(16 * k),
        ...op.localGet(lanes),
        ...op.i8x16Swizzle(),
        ...op.v128Store(12 * k),
      );
    }
  } else {
    for (let k = 0; k < 2; k++) {
      vectorBody.push(
        ...op.localGet(dst),
        ...op.localGet(src),
        ...op.v128Load(32 * k),
        ...op.localGet(src),
        ...op.v128Load(32 * k + 16),
        ...op.i8x16Shuffle(PACK16_LANES),
        ...op.v128Store(16 * k),
      );
    }
  }
  vectorBody.push(...addTo(src, 64), ...addTo(dst, 16 * width));
  const scalarBody = [
    ...op.localGet(dst),
    ...op.localGet(src),
    ...op.i32Load(),
    ...(width === 3 ? op.i32Store() : op.i32Store16()),
    ...addTo(src, 4),
    ...addTo(dst, width),
  ];
  return {
    type: 0,
    locals: width === 3 ? [I32, I32, V128] : [I32, I32],
    body: [
      ...(width === 3 ? [...op.v128Const(PACK24_LANES), ...op.localSet(lanes)] : []),
      ...endPointer(src, n, ~15, end16),
      ...endPointer(src, n, -1, end),
      ...whileBelow(src, end16, vectorBody),
      ...whileBelow(src, end, scalarBody),
    ],
  };
}

/** The kernel module's bytes: memory imported as env.memory (any size), eight functions. */
export function kernelModuleBytes(): Uint8Array<ArrayBuffer> {
  return encodeModule({
    types: [
      { params: [I32, I32, I32], results: [] },
      { params: [I32, I32], results: [I32] },
      { params: [I32, I32, I32, F64], results: [] },
    ],
    importMemory: { module: 'env', name: 'memory', limits: { min: 1 } },
    functions: [
      wrapKernel(false),
      wrapKernel(true),
      firstNonFiniteKernel(),
      weightedFoldKernel(),
      unpackAddKernel(3),
      unpackAddKernel(2),
      packKernel(3),
      packKernel(2),
    ],
    exports: [
      { name: 'wrapAdd', kind: 'func', index: 0 },
      { name: 'wrapSub', kind: 'func', index: 1 },
      { name: 'firstNonFinite', kind: 'func', index: 2 },
      { name: 'weightedFold', kind: 'func', index: 3 },
      { name: 'unpackAdd24', kind: 'func', index: 4 },
      { name: 'unpackAdd16', kind: 'func', index: 5 },
      { name: 'pack24', kind: 'func', index: 6 },
      { name: 'pack16', kind: 'func', index: 7 },
    ],
  });
}

/** 'auto' uses the SIMD kernels where WebAssembly SIMD validates; 'js' forces the JS loops. */
export type SimdMode = 'auto' | 'js';

let mode: SimdMode = 'auto';
/** undefined until first needed; null where WebAssembly SIMD is unavailable. */
let compiled: WebAssembly.Module | null | undefined;
const instances = new WeakMap<ArrayBufferLike, KernelInstance>();

/**
 * Forces the JavaScript loops ('js') or returns to detection ('auto'). Process-wide on purpose,
 * like setPrgBackend: meant for tests and benchmarks that compare both paths. Vectors allocated
 * in kernel memory stay valid typed arrays under 'js'.
 */
export function setSimdMode(next: SimdMode): void {
  mode = next;
}

function kernelModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    compiled = null;
    try {
      const bytes = kernelModuleBytes();
      if (typeof WebAssembly !== 'undefined' && WebAssembly.validate(bytes)) {
        compiled = new WebAssembly.Module(bytes);
      }
    } catch {
      compiled = null; // no WebAssembly, or compiling refused (e.g. a CSP without wasm-eval)
    }
  }
  return compiled;
}

/** True when the SIMD kernels run here (WebAssembly SIMD validates and 'js' is not forced). */
export function simdAvailable(): boolean {
  return mode === 'auto' && kernelModule() !== null;
}

/**
 * A view of `length` elements in a fresh kernel instance's memory, after a scratch region of
 * `scratchElements` (at least SCRATCH_ELEMENTS) 4-byte elements; null to fall back.
 */
function allocate<T>(
  length: number,
  elementBytes: number,
  scratchElements: number,
  view: (buffer: ArrayBuffer, byteOffset: number, length: number) => T,
): T | null {
  if (!Number.isInteger(length) || length < 0) {
    throw new CohortError(
      'INTERNAL',
      `vector length must be a non-negative integer, got ${length}`,
    );
  }
  const scratchBytes = Math.ceil(scratchElements / 16) * 64; // keeps the vector 64-byte aligned
  const bytes = scratchBytes + length * elementBytes;
  const module = mode === 'auto' ? kernelModule() : null;
  if (module === null || bytes > MAX_MEMORY_BYTES) return null;
  const pages = Math.ceil(bytes / PAGE_BYTES);
  let memory: WebAssembly.Memory;
  let instance: WebAssembly.Instance;
  try {
    memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    instance = new WebAssembly.Instance(module, { env: { memory } });
  } catch {
    return null; // address space refused: the plain typed array works the same, slower
  }
  const buffer = memory.buffer;
  instances.set(buffer, {
    exports: instance.exports as unknown as KernelExports,
    scratchU32: new Uint32Array(buffer, 0, scratchElements),
    scratchF32: new Float32Array(buffer, 0, scratchElements),
    scratchU8: new Uint8Array(buffer, 0, scratchElements * 4),
  });
  return view(buffer, scratchBytes, length);
}

/**
 * A zeroed Uint32Array of `length` elements that {@link simdWrapAdd} (and so wrapAddInto)
 * updates with SIMD: for the coordinator's secure accumulator and a client's masked vector.
 * A plain Uint32Array where the kernels are unavailable. Its memory never grows.
 */
export function allocateWrapVector(length: number): Uint32Array {
  return (
    allocate(
      length,
      4,
      SCRATCH_ELEMENTS,
      (buffer, offset, n) => new Uint32Array(buffer, offset, n),
    ) ?? new Uint32Array(length)
  );
}

/** A fold accumulator's memory, kept for reuse once its array is released or collected. */
interface RecycledAccumulator {
  key: string;
  buffer: ArrayBuffer;
  byteOffset: number;
}

/** Released accumulator memories by length and layout; at most two of each are kept. */
const recycled = new Map<string, RecycledAccumulator[]>();
const RECYCLED_PER_KEY = 2;

function recycle(entry: RecycledAccumulator): void {
  const list = recycled.get(entry.key) ?? [];
  if (list.length < RECYCLED_PER_KEY) list.push(entry);
  recycled.set(entry.key, list);
}

/** Returns a collected accumulator's memory to the pool (where FinalizationRegistry exists). */
const collected =
  typeof FinalizationRegistry === 'undefined'
    ? null
    : new FinalizationRegistry<RecycledAccumulator>(recycle);

/**
 * A zeroed Float64Array of `length` elements that {@link weightedFoldInto} folds into with
 * SIMD; a plain Float64Array where the kernels are unavailable. Its instance holds 12 bytes an
 * element up to the staging limit (the sum and a float32 staging copy), 8 past it.
 *
 * A fresh wasm memory costs its first-touch page faults on every allocation (plain typed
 * arrays mostly reuse freed heap pages), so the memory is recycled: after
 * {@link releaseFoldAccumulator}, or once the returned array is garbage-collected. Keep no
 * subarray or `buffer` of it beyond the array itself (StreamingWeightedMean never lets it out).
 */
export function allocateFoldAccumulator(length: number): Float64Array {
  const scratchElements =
    length <= foldStagingLimit ? Math.max(length, SCRATCH_ELEMENTS) : SCRATCH_ELEMENTS;
  const key = `${length}:${scratchElements}`;
  const reused = mode === 'auto' ? recycled.get(key)?.pop() : undefined;
  let entry: RecycledAccumulator;
  let sum: Float64Array;
  if (reused !== undefined) {
    entry = reused;
    sum = new Float64Array(reused.buffer, reused.byteOffset, length);
    sum.fill(0);
  } else {
    const fresh = allocate(length, 8, scratchElements, (buffer, offset, n) => {
      return new Float64Array(buffer, offset, n);
    });
    if (fresh === null) return new Float64Array(length);
    sum = fresh;
    entry = { key, buffer: fresh.buffer, byteOffset: fresh.byteOffset };
  }
  collected?.register(sum, entry, sum);
  return sum;
}

/**
 * Hands an accumulator from {@link allocateFoldAccumulator} back for reuse now; the caller must
 * not touch it (or any view of its memory) again. A no-op for a plain Float64Array.
 */
export function releaseFoldAccumulator(sum: Float64Array): void {
  const kernel = instances.get(sum.buffer);
  if (kernel === undefined || collected?.unregister(sum) === false) return;
  recycle({
    key: `${sum.length}:${kernel.scratchF32.length}`,
    buffer: sum.buffer as ArrayBuffer,
    byteOffset: sum.byteOffset,
  });
}

function kernelFor(view: ArrayBufferView): KernelInstance | undefined {
  return mode === 'auto' ? instances.get(view.buffer) : undefined;
}

/**
 * target[offset + i] += sign * source[i] (mod 2^32) with the SIMD kernel, when `target` lives in
 * a kernel instance's memory (from {@link allocateWrapVector}) and the range fits inside it;
 * returns false, having done nothing, otherwise (the caller runs its JavaScript loop).
 */
export function simdWrapAdd(
  target: Uint32Array,
  offset: number,
  source: Uint32Array,
  sign: 1 | -1,
): boolean {
  const kernel = kernelFor(target);
  const n = source.length;
  if (
    kernel === undefined ||
    source.buffer === target.buffer || // possible overlap: only the element-wise loop is defined
    !Number.isInteger(offset) ||
    offset < 0 ||
    offset + n > target.length
  ) {
    return false;
  }
  const run = sign === 1 ? kernel.exports.wrapAdd : kernel.exports.wrapSub;
  const base = target.byteOffset + offset * 4;
  const scratch = kernel.scratchU32;
  for (let i = 0; i < n; i += SCRATCH_ELEMENTS) {
    const take = Math.min(SCRATCH_ELEMENTS, n - i);
    scratch.set(take === n ? source : source.subarray(i, i + take));
    run(base + i * 4, 0, take);
  }
  return true;
}

/**
 * Packed elements copied into (or packed in) the scratch region per kernel call, by width
 * (2, 3, 4 bytes): as many as fill the 64 KiB scratch (fewer calls), less the 4 bytes the
 * 24-bit kernels read or write past their last element, in whole 16-element vector steps: 32768, 21840 and 16384.
 */
export function packedChunkElements(width: 2 | 3 | 4): number {
  return Math.floor((SCRATCH_ELEMENTS * 4 - (width === 3 ? 4 : 0)) / width / 16) * 16;
}

/**
 * target[i] += the i-th little-endian `width`-byte element of `packed` (mod 2^32) for every i
 * with the SIMD kernels (16, 24 or 32 bits: unpack-and-add, or the wrap-add), when `target`
 * lives in a kernel instance's memory and `packed` holds exactly target.length elements;
 * returns false, having done nothing, otherwise. The bytes may sit at any offset (a Node
 * Buffer from a pool): they are copied into the scratch region in chunks either way.
 */
export function simdAddPacked(target: Uint32Array, packed: Uint8Array, width: 2 | 3 | 4): boolean {
  const kernel = kernelFor(target);
  const n = target.length;
  if (
    kernel === undefined ||
    packed.buffer === target.buffer || // the bytes could overlap the scratch copy or the target
    target.byteOffset < kernel.scratchU8.byteLength || // a view over the scratch region itself
    packed.length !== n * width
  ) {
    return false;
  }
  const { exports } = kernel;
  const run =
    width === 3 ? exports.unpackAdd24 : width === 2 ? exports.unpackAdd16 : exports.wrapAdd;
  const base = target.byteOffset;
  const scratch = kernel.scratchU8;
  const chunk = packedChunkElements(width);
  for (let i = 0; i < n; i += chunk) {
    const take = Math.min(chunk, n - i);
    scratch.set(take === n ? packed : packed.subarray(i * width, (i + take) * width));
    run(base + i * 4, 0, take);
  }
  return true;
}

/**
 * out = the low `width` bytes (2 or 3) of each element of `values`, little-endian, packed (the
 * client's 16- or 24-bit wire encoding) with the SIMD kernels, when `values` lives in a kernel
 * instance's memory (from {@link allocateWrapVector}, as a client's masked vector does) and
 * `out` holds exactly values.length elements; returns false, having done nothing, otherwise.
 * Packed chunk by chunk into the scratch region, then copied out.
 */
export function simdPackLowBits(values: Uint32Array, out: Uint8Array, width: 2 | 3): boolean {
  const kernel = kernelFor(values);
  const n = values.length;
  if (
    kernel === undefined ||
    out.buffer === values.buffer ||
    values.byteOffset < kernel.scratchU8.byteLength || // a view over the scratch region itself
    out.length !== n * width
  ) {
    return false;
  }
  const run = width === 3 ? kernel.exports.pack24 : kernel.exports.pack16;
  const base = values.byteOffset;
  const scratch = kernel.scratchU8;
  const chunk = packedChunkElements(width);
  for (let i = 0; i < n; i += chunk) {
    const take = Math.min(chunk, n - i);
    run(0, base + i * 4, take);
    out.set(scratch.subarray(0, take * width), i * width);
  }
  return true;
}

/**
 * sum[i] += weight * vector[i] in float64 for every i, unless some element of `vector` is NaN or
 * infinite: then nothing is accumulated and the index of the first such element is returned
 * (-1 when the fold happened). SIMD when `sum` is from {@link allocateFoldAccumulator}, else
 * the JavaScript loop; both give bit-identical sums.
 */
export function weightedFoldInto(sum: Float64Array, vector: Float32Array, weight: number): number {
  const n = vector.length;
  if (sum.length !== n) {
    throw new CohortError('INTERNAL', `cannot fold ${n} values into ${sum.length}`);
  }
  const kernel = kernelFor(sum);
  if (kernel === undefined) return jsWeightedFold(sum, vector, weight);
  const scratch = kernel.scratchF32;
  const { firstNonFinite, weightedFold } = kernel.exports;
  const base = sum.byteOffset;
  // Every check before any accumulation: a rejected vector leaves the sum untouched.
  if (n <= scratch.length) {
    // Staged: each chunk is scanned right after its copy (still in cache), in its final place.
    for (let i = 0; i < n; i += SCRATCH_ELEMENTS) {
      const take = Math.min(SCRATCH_ELEMENTS, n - i);
      scratch.set(take === n ? vector : vector.subarray(i, i + take), i);
      const bad = firstNonFinite(i * 4, take);
      if (bad >= 0) return i + bad;
    }
    weightedFold(base, 0, n, weight);
    return -1;
  }
  for (let i = 0; i < n; i += SCRATCH_ELEMENTS) {
    const take = Math.min(SCRATCH_ELEMENTS, n - i);
    scratch.set(take === n ? vector : vector.subarray(i, i + take));
    const bad = firstNonFinite(0, take);
    if (bad >= 0) return i + bad;
  }
  for (let i = 0; i < n; i += SCRATCH_ELEMENTS) {
    const take = Math.min(SCRATCH_ELEMENTS, n - i);
    scratch.set(vector.subarray(i, i + take));
    weightedFold(base + i * 8, 0, take, weight);
  }
  return -1;
}

/** The JavaScript fold: the reference, and the path without SIMD. */
function jsWeightedFold(sum: Float64Array, vector: Float32Array, weight: number): number {
  if (!allFinite(vector)) return vector.findIndex((x) => !Number.isFinite(x));
  const n = vector.length;
  const unrolled = n - (n % 4);
  let i = 0;
  // Unrolled by four: V8 runs it markedly faster than the plain loop (it vectorizes neither).
  for (; i < unrolled; i += 4) {
    sum[i]! += weight * vector[i]!;
    sum[i + 1]! += weight * vector[i + 1]!;
    sum[i + 2]! += weight * vector[i + 2]!;
    sum[i + 3]! += weight * vector[i + 3]!;
  }
  // Stryker disable next-line EqualityOperator: one more step writes past a typed array's end, a no-op.
  for (; i < n; i++) sum[i]! += weight * vector[i]!;
  return -1;
}

/**
 * True when no element is NaN or infinite: x * 0 is 0 for every finite x and NaN otherwise,
 * so one multiply-add per element replaces a Number.isFinite call per element.
 */
function allFinite(vector: Float32Array): boolean {
  let probe = 0;
  for (let i = 0; i < vector.length; i++) probe += vector[i]! * 0;
  return probe === 0;
}
