/**
 * A minimal WebAssembly binary encoder: just enough of the format (spec 5, "Binary Format") to
 * build Cohort's SIMD kernels at run time without a compiler toolchain or an npm dependency.
 * A module here has function types, an optionally imported memory, functions with locals,
 * exports, and code made of the opcodes below (the core ones the kernels need plus the
 * 0xFD-prefixed SIMD ones). Nothing is checked here: WebAssembly.validate is the judge.
 */

/** Value types (spec 5.3.1). */
export const I32 = 0x7f;
export const I64 = 0x7e;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;

/** One of the value type bytes above. */
export type ValType = typeof I32 | typeof I64 | typeof F32 | typeof F64 | typeof V128;

/** A function signature. */
export interface FuncType {
  params: ValType[];
  results: ValType[];
}

/** A function of the module: its type (index into `types`), extra locals and body. */
export interface FuncDef {
  type: number;
  /** Types of the locals after the parameters, in order. */
  locals: ValType[];
  /** Instructions without the final `end`, which the encoder appends. */
  body: number[];
}

/** Memory limits in 64 KiB pages. */
export interface MemoryLimits {
  min: number;
  max?: number;
}

/** An export: a function or the memory, by index. */
export interface ExportDef {
  name: string;
  kind: 'func' | 'memory';
  index: number;
}

/** Everything a module may hold in this encoder. */
export interface ModuleDef {
  types: FuncType[];
  /** Import memory 0 from `module`.`name` with these limits. */
  importMemory?: { module: string; name: string; limits: MemoryLimits };
  /** Define memory 0 in the module (instead of importing it). */
  memory?: MemoryLimits;
  functions: FuncDef[];
  exports: ExportDef[];
}

/** Unsigned LEB128 of a non-negative integer below 2^32. */
export function uleb128(value: number): number[] {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`uleb128 takes an integer in [0, 2^32), got ${value}`);
  }
  const out: number[] = [];
  let v = value;
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 of an integer in [-2^31, 2^31) (what i32.const takes). */
export function sleb128(value: number): number[] {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new RangeError(`sleb128 takes an integer in [-2^31, 2^31), got ${value}`);
  }
  const out: number[] = [];
  let v = value;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7; // arithmetic shift: stays -1 for negative values
    const signBitClear = (byte & 0x40) === 0;
    if ((v === 0 && signBitClear) || (v === -1 && !signBitClear)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** A UTF-8 name, length-prefixed. */
function name(text: string): number[] {
  const bytes = Array.from(new TextEncoder().encode(text));
  return [...uleb128(bytes.length), ...bytes];
}

/** A vector: element count, then the elements. */
function vec(items: number[][]): number[] {
  return [...uleb128(items.length), ...items.flat()];
}

function limits(l: MemoryLimits): number[] {
  return l.max === undefined
    ? [0x00, ...uleb128(l.min)]
    : [0x01, ...uleb128(l.min), ...uleb128(l.max)];
}

function section(id: number, contents: number[]): number[] {
  return [id, ...uleb128(contents.length), ...contents];
}

/** Groups consecutive locals of one type, as the code section stores them. */
function localGroups(locals: ValType[]): number[][] {
  const groups: number[][] = [];
  let i = 0;
  while (i < locals.length) {
    let j = i;
    while (j < locals.length && locals[j] === locals[i]) j++;
    groups.push([...uleb128(j - i), locals[i]!]);
    i = j;
  }
  return groups;
}

/** The module's binary encoding: magic, version 1, then sections in the required order. */
export function encodeModule(def: ModuleDef): Uint8Array<ArrayBuffer> {
  const bytes: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types = def.types.map((t) => [
    0x60,
    ...vec(t.params.map((p) => [p])),
    ...vec(t.results.map((r) => [r])),
  ]);
  bytes.push(...section(1, vec(types)));
  if (def.importMemory) {
    const m = def.importMemory;
    bytes.push(
      ...section(2, vec([[...name(m.module), ...name(m.name), 0x02, ...limits(m.limits)]])),
    );
  }
  bytes.push(...section(3, vec(def.functions.map((f) => uleb128(f.type)))));
  if (def.memory) bytes.push(...section(5, vec([limits(def.memory)])));
  const exports = def.exports.map((e) => [
    ...name(e.name),
    e.kind === 'func' ? 0x00 : 0x02,
    ...uleb128(e.index),
  ]);
  bytes.push(...section(7, vec(exports)));
  const bodies = def.functions.map((f) => {
    const body = [...vec(localGroups(f.locals)), ...f.body, 0x0b];
    return [...uleb128(body.length), ...body];
  });
  bytes.push(...section(10, vec(bodies)));
  return new Uint8Array(bytes);
}

/** Block type of a block or loop that takes and leaves nothing. */
const EMPTY_BLOCK = 0x40;

function simd(opcode: number, ...immediates: number[]): number[] {
  return [0xfd, ...uleb128(opcode), ...immediates];
}

/** Memory argument: log2 of the alignment hint, then the constant byte offset. */
function memarg(alignLog2: number, offset: number): number[] {
  return [...uleb128(alignLog2), ...uleb128(offset)];
}

/**
 * Instruction encoders, each returning its bytes. Only what the kernels use; names follow the
 * text format (`i32.add` is `op.i32Add()`).
 */
export const op = {
  block: (): number[] => [0x02, EMPTY_BLOCK],
  loop: (): number[] => [0x03, EMPTY_BLOCK],
  if: (): number[] => [0x04, EMPTY_BLOCK],
  end: (): number[] => [0x0b],
  br: (depth: number): number[] => [0x0c, ...uleb128(depth)],
  brIf: (depth: number): number[] => [0x0d, ...uleb128(depth)],
  return: (): number[] => [0x0f],
  drop: (): number[] => [0x1a],
  localGet: (index: number): number[] => [0x20, ...uleb128(index)],
  localSet: (index: number): number[] => [0x21, ...uleb128(index)],
  localTee: (index: number): number[] => [0x22, ...uleb128(index)],
  i32Load: (offset = 0): number[] => [0x28, ...memarg(2, offset)],
  i32Load16U: (offset = 0): number[] => [0x2f, ...memarg(1, offset)],
  f32Load: (offset = 0): number[] => [0x2a, ...memarg(2, offset)],
  f64Load: (offset = 0): number[] => [0x2b, ...memarg(3, offset)],
  i32Store: (offset = 0): number[] => [0x36, ...memarg(2, offset)],
  i32Store16: (offset = 0): number[] => [0x3b, ...memarg(1, offset)],
  f64Store: (offset = 0): number[] => [0x39, ...memarg(3, offset)],
  i32Const: (value: number): number[] => [0x41, ...sleb128(value)],
  i32Eq: (): number[] => [0x46],
  i32Ne: (): number[] => [0x47],
  i32LtU: (): number[] => [0x49],
  i32GeU: (): number[] => [0x4f],
  i32Add: (): number[] => [0x6a],
  i32Sub: (): number[] => [0x6b],
  i32And: (): number[] => [0x71],
  i32Shl: (): number[] => [0x74],
  i32ShrU: (): number[] => [0x76],
  i32ReinterpretF32: (): number[] => [0xbc],
  f64Add: (): number[] => [0xa0],
  f64Mul: (): number[] => [0xa2],
  f64PromoteF32: (): number[] => [0xbb],
  // SIMD (0xFD prefix, opcode as unsigned LEB128).
  v128Load: (offset = 0): number[] => simd(0x00, ...memarg(4, offset)),
  /** Four little-endian u16 (8 bytes) zero-extended to four i32 lanes. */
  v128Load16x4U: (offset = 0): number[] => simd(0x04, ...memarg(3, offset)),
  v128Load64Zero: (offset = 0): number[] => simd(0x5d, ...memarg(3, offset)),
  v128Store: (offset = 0): number[] => simd(0x0b, ...memarg(4, offset)),
  v128Const: (bytes: number[]): number[] => {
    if (bytes.length !== 16) throw new RangeError('v128.const takes 16 bytes');
    return simd(0x0c, ...bytes);
  },
  i8x16Shuffle: (lanes: number[]): number[] => {
    if (lanes.length !== 16) throw new RangeError('i8x16.shuffle takes 16 lane indices');
    return simd(0x0d, ...lanes);
  },
  /** Lane i = a[b[i]], 0 where b[i] >= 16. */
  i8x16Swizzle: (): number[] => simd(0x0e),
  i32x4Splat: (): number[] => simd(0x11),
  f64x2Splat: (): number[] => simd(0x14),
  i32x4Eq: (): number[] => simd(0x37),
  v128And: (): number[] => simd(0x4e),
  v128Or: (): number[] => simd(0x50),
  v128AnyTrue: (): number[] => simd(0x53),
  f64x2PromoteLowF32x4: (): number[] => simd(0x5f),
  i32x4Add: (): number[] => simd(0xae),
  i32x4Sub: (): number[] => simd(0xb1),
  f64x2Add: (): number[] => simd(0xf0),
  f64x2Mul: (): number[] => simd(0xf2),
};
