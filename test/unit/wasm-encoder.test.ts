import type { FuncDef } from '../../shared/simd/wasm-encoder';
import { F64, I32, V128, encodeModule, op, sleb128, uleb128 } from '../../shared/simd/wasm-encoder';
import { kernelModuleBytes } from '../../shared/simd/kernels';

describe('wasm encoder: LEB128', () => {
  it('encodes unsigned values as the spec examples do', () => {
    expect(uleb128(0)).toEqual([0x00]);
    expect(uleb128(127)).toEqual([0x7f]);
    expect(uleb128(128)).toEqual([0x80, 0x01]);
    expect(uleb128(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(uleb128(2 ** 32 - 1)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(() => uleb128(-1)).toThrow(RangeError);
    expect(() => uleb128(2 ** 32)).toThrow(RangeError);
    expect(() => uleb128(1.5)).toThrow(RangeError);
  });

  it('encodes signed values with the sign in bit 6 of the last byte', () => {
    expect(sleb128(0)).toEqual([0x00]);
    expect(sleb128(-1)).toEqual([0x7f]);
    expect(sleb128(63)).toEqual([0x3f]);
    expect(sleb128(64)).toEqual([0xc0, 0x00]);
    expect(sleb128(-64)).toEqual([0x40]);
    expect(sleb128(-65)).toEqual([0xbf, 0x7f]);
    expect(sleb128(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(sleb128(2 ** 31 - 1)).toEqual([0xff, 0xff, 0xff, 0xff, 0x07]);
    expect(sleb128(-(2 ** 31))).toEqual([0x80, 0x80, 0x80, 0x80, 0x78]);
    expect(() => sleb128(2 ** 31)).toThrow(RangeError);
  });

  it('round-trips i32.const through a running module for edge values', () => {
    for (const value of [0, 1, -1, 63, 64, -64, -65, 0x7f800000, 2 ** 31 - 1, -(2 ** 31)]) {
      const bytes = encodeModule({
        types: [{ params: [], results: [I32] }],
        functions: [{ type: 0, locals: [], body: op.i32Const(value) }],
        exports: [{ name: 'f', kind: 'func', index: 0 }],
      });
      const f = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.f as () => number;
      expect(f()).toBe(value);
    }
  });
});

describe('wasm encoder: modules', () => {
  it('emits the hand-assembled bytes of (func (export "add") (param i32 i32) (result i32))', () => {
    const bytes = encodeModule({
      types: [{ params: [I32, I32], results: [I32] }],
      functions: [
        { type: 0, locals: [], body: [...op.localGet(0), ...op.localGet(1), ...op.i32Add()] },
      ],
      exports: [{ name: 'add', kind: 'func', index: 0 }],
    });
    // prettier-ignore
    expect(Array.from(bytes)).toEqual([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
      0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, // type: (i32 i32) -> i32
      0x03, 0x02, 0x01, 0x00, // function 0 has type 0
      0x07, 0x07, 0x01, 0x03, 0x61, 0x64, 0x64, 0x00, 0x00, // export "add" = func 0
      0x0a, 0x09, 0x01, 0x07, 0x00, 0x20, 0x00, 0x20, 0x01, 0x6a, 0x0b, // code
    ]);
    expect(WebAssembly.validate(bytes)).toBe(true);
    const add = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.add as (
      a: number,
      b: number,
    ) => number;
    expect(add(2, 40)).toBe(42);
    expect(add(0x7fffffff, 1)).toBe(-0x80000000); // i32 wraps
  });

  it('groups locals by type and imports or defines a memory', () => {
    // f(p) = p + 1 stored to memory[0] via a local; locals i32 i32 f64 v128 become 3 groups.
    const body = [
      ...op.localGet(0),
      ...op.i32Const(1),
      ...op.i32Add(),
      ...op.localSet(1),
      ...op.i32Const(0),
      ...op.localGet(1),
      ...op.i32Store(),
    ];
    const fn: FuncDef = { type: 0, locals: [I32, I32, F64, V128], body };
    const imported = encodeModule({
      types: [{ params: [I32], results: [] }],
      importMemory: { module: 'env', name: 'memory', limits: { min: 1, max: 2 } },
      functions: [fn],
      exports: [{ name: 'f', kind: 'func', index: 0 }],
    });
    expect(WebAssembly.validate(imported)).toBe(true);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 2 });
    const instance = new WebAssembly.Instance(new WebAssembly.Module(imported), {
      env: { memory },
    });
    (instance.exports.f as (p: number) => void)(41);
    expect(new Uint32Array(memory.buffer)[0]).toBe(42);

    const defined = encodeModule({
      types: [{ params: [I32], results: [] }],
      memory: { min: 1 },
      functions: [fn],
      exports: [
        { name: 'f', kind: 'func', index: 0 },
        { name: 'memory', kind: 'memory', index: 0 },
      ],
    });
    const own = new WebAssembly.Instance(new WebAssembly.Module(defined)).exports;
    (own.f as (p: number) => void)(6);
    expect(new Uint32Array((own.memory as WebAssembly.Memory).buffer)[0]).toBe(7);
  });

  it('encodes SIMD instructions with the 0xFD prefix and LEB128 opcodes', () => {
    expect(op.v128Load(16)).toEqual([0xfd, 0x00, 0x04, 0x10]);
    expect(op.v128Store()).toEqual([0xfd, 0x0b, 0x04, 0x00]);
    expect(op.i32x4Add()).toEqual([0xfd, 0xae, 0x01]);
    expect(op.i32x4Sub()).toEqual([0xfd, 0xb1, 0x01]);
    expect(op.f64x2Add()).toEqual([0xfd, 0xf0, 0x01]);
    expect(op.f64x2Mul()).toEqual([0xfd, 0xf2, 0x01]);
    expect(op.f64x2PromoteLowF32x4()).toEqual([0xfd, 0x5f]);
    expect(op.v128AnyTrue()).toEqual([0xfd, 0x53]);
    expect(() => op.v128Const([1, 2])).toThrow(RangeError);
    expect(() => op.i8x16Shuffle([0])).toThrow(RangeError);
  });

  it('runs v128.const, i8x16.shuffle, splats and lane arithmetic as the spec defines them', () => {
    // Stores four results at 0, 16, 32, 48: a shuffled constant, i32x4.splat(-1) + 2,
    // f64x2.splat(1.5) * 2 + 0.25, and any_true of i32x4.eq(splat 7, splat 7).
    const lanes = Array.from({ length: 16 }, (_, i) => i);
    const body = [
      ...op.i32Const(0),
      ...op.v128Const(lanes),
      ...op.v128Const(lanes),
      ...op.i8x16Shuffle([...lanes.slice(8), ...lanes.slice(0, 8)]),
      ...op.v128Store(),
      ...op.i32Const(0),
      ...op.i32Const(-1),
      ...op.i32x4Splat(),
      ...op.i32Const(2),
      ...op.i32x4Splat(),
      ...op.i32x4Add(),
      ...op.v128Store(16),
      ...op.i32Const(0),
      ...op.localGet(0),
      ...op.f64x2Splat(),
      ...op.localGet(0),
      ...op.localGet(0),
      ...op.f64Add(),
      ...op.f64x2Splat(),
      ...op.f64x2Mul(),
      ...op.v128Store(32),
      ...op.i32Const(48),
      ...op.i32Const(7),
      ...op.i32x4Splat(),
      ...op.i32Const(7),
      ...op.i32x4Splat(),
      ...op.i32x4Eq(),
      ...op.v128AnyTrue(),
      ...op.i32Store(),
    ];
    const bytes = encodeModule({
      types: [{ params: [F64], results: [] }],
      memory: { min: 1, max: 1 },
      functions: [{ type: 0, locals: [], body }],
      exports: [
        { name: 'f', kind: 'func', index: 0 },
        { name: 'memory', kind: 'memory', index: 0 },
      ],
    });
    expect(WebAssembly.validate(bytes)).toBe(true);
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
    (exports.f as (x: number) => void)(1.5);
    const buffer = (exports.memory as WebAssembly.Memory).buffer;
    expect(Array.from(new Uint8Array(buffer, 0, 16))).toEqual([
      ...lanes.slice(8),
      ...lanes.slice(0, 8),
    ]);
    expect(Array.from(new Uint32Array(buffer, 16, 4))).toEqual([1, 1, 1, 1]);
    expect(Array.from(new Float64Array(buffer, 32, 2))).toEqual([4.5, 4.5]);
    expect(new Uint32Array(buffer, 48, 1)[0]).toBe(1);
  });

  it('builds a kernel module that WebAssembly.validate accepts', () => {
    expect(WebAssembly.validate(kernelModuleBytes())).toBe(true);
  });
});
