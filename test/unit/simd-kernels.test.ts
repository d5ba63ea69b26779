import { StreamingWeightedMean } from '../../shared/aggregation/streaming-weighted-mean';
import { createRng } from '../../shared/random';
import type { Rng } from '../../shared/random';
import { addPackedInto, packLowBits } from '../../shared/secagg/packing';
import { wrapAddInto } from '../../shared/secagg/prg';
import {
  SCRATCH_ELEMENTS,
  packedChunkElements,
  simdAddPacked,
  simdPackLowBits,
  allocateFoldAccumulator,
  allocateWrapVector,
  releaseFoldAccumulator,
  setFoldStagingLimit,
  setSimdMode,
  simdAvailable,
  simdWrapAdd,
  weightedFoldInto,
} from '../../shared/simd/kernels';

const C = SCRATCH_ELEMENTS;
/** Short lengths around the 16- and 8-element vector steps, and around a scratch chunk. */
const LENGTHS = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, C - 1, C, C + 1, 2 * C + 5];
const OFFSETS = [0, 1, 3, 7];

const DEFAULT_STAGING_LIMIT = setFoldStagingLimit(0);
setFoldStagingLimit(DEFAULT_STAGING_LIMIT);

afterEach(() => {
  setSimdMode('auto');
  setFoldStagingLimit(DEFAULT_STAGING_LIMIT);
});

/** Index of the first differing byte of two typed arrays (-1: identical), fast on long ones. */
function firstDifference(a: ArrayBufferView, b: ArrayBufferView): number {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (x.length !== y.length) return Math.min(x.length, y.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/** Random uint32 values, a quarter of them at the wrap edges (0, 1, 2^32 - 1, 2^31). */
function randomWords(rng: Rng, length: number): Uint32Array {
  const edges = [0, 1, 0xffffffff, 0x80000000];
  return Uint32Array.from({ length }, () =>
    rng.int(4) === 0 ? edges[rng.int(4)]! : Math.floor(rng.next() * 2 ** 32),
  );
}

function referenceWrap(target: Uint32Array, offset: number, source: Uint32Array, sign: 1 | -1) {
  const out = target.slice();
  for (let i = 0; i < source.length; i++) {
    out[offset + i] =
      (sign === 1 ? out[offset + i]! + source[i]! : out[offset + i]! - source[i]!) >>> 0;
  }
  return out;
}

describe('SIMD kernels', () => {
  it('are available on this Node (WebAssembly SIMD validates)', () => {
    expect(simdAvailable()).toBe(true);
    setSimdMode('js');
    expect(simdAvailable()).toBe(false);
  });

  it('allocate zeroed vectors in kernel memory that never grows', () => {
    const words = allocateWrapVector(1000);
    const sums = allocateFoldAccumulator(1000);
    expect(words).toHaveLength(1000);
    expect(sums).toHaveLength(1000);
    expect(words.every((w) => w === 0)).toBe(true);
    expect(sums.every((s) => s === 0)).toBe(true);
    // In a wasm memory: more than the vector (the scratch region), whole 64 KiB pages.
    expect(words.buffer.byteLength % 65536).toBe(0);
    expect(words.buffer.byteLength).toBeGreaterThan(words.byteLength);
    expect(allocateWrapVector(0)).toHaveLength(0);
    expect(() => allocateWrapVector(-1)).toThrow(/non-negative integer/);
    setSimdMode('js');
    const plain = allocateWrapVector(10);
    expect(plain.buffer.byteLength).toBe(40);
    expect(allocateFoldAccumulator(10).buffer.byteLength).toBe(80);
  });

  it('wrap-add and wrap-sub bit-identically to the mod-2^32 reference at every length and offset', () => {
    const rng = createRng(9);
    for (const length of LENGTHS) {
      for (const offset of OFFSETS) {
        for (const sign of [1, -1] as const) {
          const size = offset + length + 2; // two elements after the range stay untouched
          const target = allocateWrapVector(size);
          target.set(randomWords(rng, size));
          const source = randomWords(rng, length);
          const expected = referenceWrap(target, offset, source, sign);
          expect(simdWrapAdd(target, offset, source, sign)).toBe(true);
          expect(firstDifference(target, expected)).toBe(-1);
        }
      }
    }
  });

  it('wrapAddInto takes the SIMD path for kernel vectors and gives the JS loop its exact bytes', () => {
    const rng = createRng(10);
    for (const length of [0, 1, 5, 17, 100, C + 1, 3 * C - 1]) {
      for (const sign of [1, -1] as const) {
        const initial = randomWords(rng, length + 3);
        const source = randomWords(rng, length);
        const simd = allocateWrapVector(length + 3);
        simd.set(initial);
        const plain = initial.slice();
        wrapAddInto(simd, 3, source, sign);
        wrapAddInto(plain, 3, source, sign);
        expect(firstDifference(simd, plain)).toBe(-1);
        expect(firstDifference(plain, referenceWrap(initial, 3, source, sign))).toBe(-1);
        // Forced fallback on a kernel vector: the JS loop, the same bytes again.
        setSimdMode('js');
        const forced = allocateWrapVector(length + 3);
        forced.set(initial);
        const kernelForced = simd.slice();
        const kernelVector = allocateWrapVector(length + 3);
        setSimdMode('auto');
        kernelVector.set(initial);
        setSimdMode('js');
        expect(simdWrapAdd(kernelVector, 3, source, sign)).toBe(false);
        wrapAddInto(kernelVector, 3, source, sign);
        wrapAddInto(forced, 3, source, sign);
        expect(firstDifference(kernelVector, kernelForced)).toBe(-1);
        expect(firstDifference(forced, kernelForced)).toBe(-1);
        setSimdMode('auto');
      }
    }
  });

  it('leaves to the JS loop what the kernel cannot do exactly', () => {
    const target = allocateWrapVector(8);
    target.fill(5);
    const source = new Uint32Array([1, 2, 3]);
    expect(simdWrapAdd(new Uint32Array(8), 0, source, 1)).toBe(false); // not kernel memory
    expect(simdWrapAdd(target, 6, source, 1)).toBe(false); // past the end
    expect(simdWrapAdd(target, -1, source, 1)).toBe(false);
    expect(simdWrapAdd(target, 0.5, source, 1)).toBe(false);
    expect(simdWrapAdd(target, 0, target.subarray(2, 5), 1)).toBe(false); // same memory
    expect(Array.from(target)).toEqual([5, 5, 5, 5, 5, 5, 5, 5]);
    // What the loop does with those (writes past the end are no-ops) stays what it was.
    wrapAddInto(target, 6, source, 1);
    expect(Array.from(target)).toEqual([5, 5, 5, 5, 5, 5, 6, 7]);
  });
});

/** target[i] + the i-th little-endian `width`-byte element of `packed`, mod 2^32, byte by byte. */
function referenceUnpackAdd(target: Uint32Array, packed: Uint8Array, width: number): Uint32Array {
  const out = target.slice();
  for (let i = 0; i < out.length; i++) {
    let element = 0;
    for (let b = width - 1; b >= 0; b--) element = element * 256 + packed[i * width + b]!;
    out[i] = (out[i]! + element) % 2 ** 32;
  }
  return out;
}

/** The same bytes at `offset` into a Node Buffer (a pool slice, as socket.io hands them over). */
function atOffset(bytes: Uint8Array, offset: number): Uint8Array {
  const pool = Buffer.alloc(bytes.length + offset + 3, 0xa5);
  pool.set(bytes, offset);
  return pool.subarray(offset, offset + bytes.length);
}

/** 0..17 around the vector steps, then each chunk boundary of this width +-1, two chunks + 5. */
const lengthsFor = (width: 2 | 3 | 4): number[] => {
  const chunk = packedChunkElements(width);
  return [
    ...Array.from({ length: 18 }, (_, i) => i),
    31,
    32,
    33,
    127,
    128,
    129,
    chunk - 1,
    chunk,
    chunk + 1,
    2 * chunk - 1,
    2 * chunk,
    2 * chunk + 1,
    2 * chunk + 5,
  ];
};

describe('SIMD unpack-and-add of packed elements', () => {
  it('chunks fill the 64 KiB scratch, leaving the 24-bit kernel its 4 bytes of over-read', () => {
    expect([2, 3, 4].map((w) => packedChunkElements(w as 2 | 3 | 4))).toEqual([
      32768, 21840, 16384,
    ]);
    expect(packedChunkElements(3) * 3 + 4).toBeLessThanOrEqual(SCRATCH_ELEMENTS * 4);
  });

  it.each([16, 24, 32] as const)(
    'at %i bits is bit-identical to the byte-wise reference at every length, aligned or not',
    (bits) => {
      const width = (bits / 8) as 2 | 3 | 4;
      const rng = createRng(20 + bits);
      for (const length of lengthsFor(width)) {
        // Masked values with their low bits all ones, zero or random: sums wrap at 2^32.
        const packed = packLowBits(randomWords(rng, length), bits);
        const initial = randomWords(rng, length);
        const expected = referenceUnpackAdd(initial, packed, width);
        for (const offset of [0, 1, 3]) {
          const target = allocateWrapVector(length);
          target.set(initial);
          expect(simdAddPacked(target, atOffset(packed, offset), width)).toBe(true);
          expect([length, offset, firstDifference(target, expected)]).toEqual([length, offset, -1]);
        }
        // addPackedInto: SIMD into kernel memory, the JS loop into a plain array and, forced,
        // into kernel memory: the same bytes.
        const simd = allocateWrapVector(length);
        simd.set(initial);
        const plain = initial.slice();
        addPackedInto(simd, atOffset(packed, 1), bits);
        addPackedInto(plain, packed, bits);
        const forced = allocateWrapVector(length);
        forced.set(initial);
        setSimdMode('js');
        expect(simdAddPacked(forced, packed, width)).toBe(false);
        addPackedInto(forced, atOffset(packed, 1), bits);
        setSimdMode('auto');
        expect(firstDifference(simd, expected)).toBe(-1);
        expect(firstDifference(plain, expected)).toBe(-1);
        expect(firstDifference(forced, expected)).toBe(-1);
      }
    },
  );

  it('ignores what a shorter last chunk leaves in the scratch region past its bytes', () => {
    // Every packed byte 0xff: a kernel that let one stale scratch byte into an element, or
    // dropped one of its own, would be off by a multiple of 2^16 or 2^24.
    for (const bits of [16, 24] as const) {
      const width = (bits / 8) as 2 | 3;
      const length = packedChunkElements(width) + 21; // a tail chunk of a vector step and five
      const target = allocateWrapVector(length);
      addPackedInto(target, new Uint8Array(length * width).fill(0xff), bits);
      addPackedInto(target, new Uint8Array(length * width), bits);
      expect(target.every((v) => v === 2 ** bits - 1)).toBe(true);
      addPackedInto(target, new Uint8Array(length * width).fill(1), bits);
      const one = bits === 16 ? 0x0101 : 0x010101;
      expect(target.every((v) => v === 2 ** bits - 1 + one)).toBe(true);
    }
  });

  it('folds ten inputs into one accumulator as the coordinator does, wrapping at 2^32', () => {
    const rng = createRng(30);
    const length = 2 * packedChunkElements(3) + 5;
    for (const bits of [16, 24] as const) {
      const simd = allocateWrapVector(length);
      simd.fill(0xffffff00);
      const plain = simd.slice();
      for (let k = 0; k < 10; k++) {
        const packed = packLowBits(randomWords(rng, length), bits);
        addPackedInto(simd, atOffset(packed, k % 4), bits);
        setSimdMode('js');
        addPackedInto(plain, packed, bits);
        setSimdMode('auto');
      }
      expect(firstDifference(simd, plain)).toBe(-1);
      expect(simd.some((v) => v < 0xffffff00)).toBe(true); // some sums did wrap
    }
  });

  it('leaves to the JS loop what the kernels cannot do exactly', () => {
    const target = allocateWrapVector(200);
    target.fill(5);
    const packed = new Uint8Array(600).fill(1);
    expect(simdAddPacked(new Uint32Array(200), packed, 3)).toBe(false); // not kernel memory
    expect(simdAddPacked(target, packed.subarray(1), 3)).toBe(false); // one byte short
    expect(simdAddPacked(target, packed, 2)).toBe(false); // 3 bytes an element, not 2
    const ownMemory = new Uint8Array(target.buffer, 0, 600); // the scratch region itself
    expect(simdAddPacked(target, ownMemory, 3)).toBe(false);
    expect(target.every((v) => v === 5)).toBe(true);
  });
});

describe('SIMD packing of low bits', () => {
  /** The low `width` bytes of each value, little-endian, byte by byte. */
  function referencePack(values: Uint32Array, width: number): Uint8Array {
    const out = new Uint8Array(values.length * width);
    values.forEach((v, i) => {
      for (let b = 0; b < width; b++) out[i * width + b] = Math.floor(v / 256 ** b) % 256;
    });
    return out;
  }

  it.each([16, 24] as const)(
    'at %i bits is byte-identical to the reference at every length, the values untouched',
    (bits) => {
      const width = (bits / 8) as 2 | 3;
      const rng = createRng(40 + bits);
      const lengths = lengthsFor(width);
      for (const length of lengths) {
        const values = allocateWrapVector(length);
        values.set(randomWords(rng, length));
        const before = values.slice();
        const expected = referencePack(values, width);
        // Into a Node Buffer at an odd offset with guard bytes on both sides: exactly its bytes.
        const pool = Buffer.alloc(length * width + 8, 0xa5);
        const out = pool.subarray(3, 3 + length * width);
        expect(simdPackLowBits(values, out, width)).toBe(true);
        expect([length, firstDifference(out, expected)]).toEqual([length, -1]);
        expect([pool[2], pool[3 + length * width]]).toEqual([0xa5, 0xa5]);
        expect(firstDifference(values, before)).toBe(-1);
        // packLowBits: SIMD from kernel memory, the JS loop from a plain copy and, forced, from
        // kernel memory: the same bytes.
        expect(firstDifference(packLowBits(values, bits), expected)).toBe(-1);
        expect(firstDifference(packLowBits(values.slice(), bits), expected)).toBe(-1);
        setSimdMode('js');
        expect(simdPackLowBits(values, new Uint8Array(length * width), width)).toBe(false);
        expect(firstDifference(packLowBits(values, bits), expected)).toBe(-1);
        setSimdMode('auto');
      }
    },
  );

  it('leaves to the JS loop what the kernels cannot do exactly', () => {
    const values = allocateWrapVector(200);
    values.fill(0x01020304);
    expect(simdPackLowBits(values.slice(), new Uint8Array(600), 3)).toBe(false); // plain
    expect(simdPackLowBits(values, new Uint8Array(599), 3)).toBe(false); // one byte short
    expect(simdPackLowBits(values, new Uint8Array(600), 2)).toBe(false); // 3 bytes, not 2
    const scratchView = new Uint32Array(values.buffer, 0, 200); // the scratch region itself
    expect(simdPackLowBits(scratchView, new Uint8Array(600), 3)).toBe(false);
    expect(simdAddPacked(scratchView, new Uint8Array(600), 3)).toBe(false);
    const inOwnMemory = new Uint8Array(values.buffer, values.byteOffset + 800, 600);
    expect(simdPackLowBits(values.subarray(0, 200), inOwnMemory, 3)).toBe(false);
  });
});

/** Random float32 values of mixed magnitude, including subnormals and values near the max. */
function randomFloats(rng: Rng, length: number): Float32Array {
  const special = [0, -0, 1e-45, -1e-40, 3.4e38, -3.4e38, 1.5, -2.75];
  return Float32Array.from({ length }, () =>
    rng.int(8) === 0
      ? special[rng.int(special.length)]!
      : (rng.next() - 0.5) * 10 ** (rng.int(12) - 6),
  );
}

/** The fold exactly as StreamingWeightedMean defines it: sum + w * x in float64 per element. */
function referenceFold(sum: Float64Array, vector: Float32Array, weight: number): Float64Array {
  const out = sum.slice();
  for (let i = 0; i < vector.length; i++) out[i] = out[i]! + weight * vector[i]!;
  return out;
}

function bytesOf(a: Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}

describe('SIMD weighted fold', () => {
  it.each([
    ['staged in a region of its own length', 1 << 22],
    ['through the 64 KiB scratch twice', 0],
  ])('is bit-identical to the float64 reference at every length (%s)', (_, limit) => {
    setFoldStagingLimit(limit);
    const rng = createRng(11);
    for (const length of LENGTHS) {
      for (const weight of [1, 37, 0.1, 1234.5678, 1e300]) {
        const sum = allocateFoldAccumulator(length);
        sum.set(Float64Array.from({ length }, () => (rng.next() - 0.5) * 1e3));
        const vector = randomFloats(rng, length);
        const expected = referenceFold(sum, vector, weight);
        expect(weightedFoldInto(sum, vector, weight)).toBe(-1);
        expect(firstDifference(sum, expected)).toBe(-1);
        // A second fold three ways from the same sums: SIMD, the JS loop on a plain array, and
        // the forced fallback on kernel memory. All bytes equal the reference.
        const twice = referenceFold(expected, vector, weight);
        const plain = expected.slice();
        const kernelForced = allocateFoldAccumulator(length);
        kernelForced.set(expected);
        expect(weightedFoldInto(sum, vector, weight)).toBe(-1);
        expect(weightedFoldInto(plain, vector, weight)).toBe(-1);
        setSimdMode('js');
        expect(weightedFoldInto(kernelForced, vector, weight)).toBe(-1);
        setSimdMode('auto');
        expect(firstDifference(sum, twice)).toBe(-1);
        expect(firstDifference(plain, twice)).toBe(-1);
        expect(firstDifference(kernelForced, twice)).toBe(-1);
      }
    }
  });

  it('rejects a non-finite element anywhere, reports its index and leaves the sum untouched', () => {
    const rng = createRng(12);
    const cases: Array<[number, number]> = [
      [1, 0],
      [5, 4],
      [17, 0],
      [17, 8],
      [17, 15], // last of the vector step
      [17, 16], // the tail
      [C + 5, C + 3], // tail after a chunk
      [3 * C, 0],
      [3 * C, C - 1], // last of the first chunk
      [3 * C, C], // first of the second
      [3 * C, C + 1],
      [3 * C, Math.floor(1.5 * C)], // middle
      [3 * C, 3 * C - 1], // last
    ];
    for (const [length, index] of cases) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        for (const [forceJs, limit] of [
          [false, 1 << 22],
          [false, 0],
          [true, 0],
        ] as const) {
          setSimdMode(forceJs ? 'js' : 'auto');
          setFoldStagingLimit(limit);
          const sum = allocateFoldAccumulator(length);
          sum.set(Float64Array.from({ length }, () => rng.next()));
          const before = bytesOf(sum);
          const vector = randomFloats(rng, length);
          vector[index] = bad;
          if (index + 2 < length) vector[index + 2] = NaN; // a later one is not reported
          expect(weightedFoldInto(sum, vector, 3)).toBe(index);
          expect(firstDifference(sum, before)).toBe(-1);
        }
      }
    }
  });

  it('recycles a released accumulator memory, zeroed, once', () => {
    const first = allocateFoldAccumulator(1001);
    first.fill(7);
    const buffer = first.buffer;
    releaseFoldAccumulator(first);
    releaseFoldAccumulator(first); // a second release is ignored: never handed out twice
    releaseFoldAccumulator(new Float64Array(1001)); // a plain array: nothing to recycle
    const again = allocateFoldAccumulator(1001);
    expect(again.buffer).toBe(buffer);
    expect(again.every((v) => v === 0)).toBe(true);
    const other = allocateFoldAccumulator(1001);
    expect(other.buffer).not.toBe(buffer);
    // The recycled memory still folds with SIMD, bit-identically.
    const vector = randomFloats(createRng(13), 1001);
    expect(weightedFoldInto(again, vector, 3)).toBe(-1);
    expect(firstDifference(again, referenceFold(new Float64Array(1001), vector, 3))).toBe(-1);
  });

  it('StreamingWeightedMean.release recycles its accumulator and ends the mean', () => {
    const first = new StreamingWeightedMean(300);
    first.add(new Float32Array(300).fill(2), 1);
    expect(first.mean()[299]).toBe(2);
    first.release();
    first.release(); // idempotent
    expect(() => first.add(new Float32Array(300), 1)).toThrow(/released/);
    expect(() => first.mean()).toThrow(/released/);
    // The next mean of this length starts from the recycled (zeroed) memory.
    const next = new StreamingWeightedMean(300);
    next.add(new Float32Array(300).fill(4), 3);
    next.add(new Float32Array(300).fill(1), 1);
    expect(Array.from(next.mean().subarray(0, 3))).toEqual([3.25, 3.25, 3.25]);
  });

  it('refuses vectors of another length', () => {
    expect(() => weightedFoldInto(allocateFoldAccumulator(4), new Float32Array(5), 1)).toThrow(
      /cannot fold 5 values into 4/,
    );
  });
});
