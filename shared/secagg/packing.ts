import { CohortError } from '../errors';
import { bytesToUint32LE, uint32ToBytesLE } from './encoding';
import { wrapAddInto } from './prg';
import { SIMD_MIN_ELEMENTS, simdAddPacked, simdPackLowBits } from '../simd/kernels';

/**
 * The packed wire encoding of a masked vector. Masks and sums live mod 2^32, but a config of
 * wire width b (16, 24 or 32 bits; shared/secagg/params.ts) makes every sum fit b-bit two's
 * complement, and (x + y) mod 2^b = ((x mod 2^b) + (y mod 2^b)) mod 2^b: so a client sends
 * only the low b bits of each masked element, little-endian, b / 8 bytes each, and the
 * coordinator adds those into its Uint32 accumulator. After the masks are removed mod 2^32,
 * the low b bits of the accumulator are the low b bits of the true sum, which is all the
 * decoder reads. The low b bits of a uniform 32-bit mask are uniform mod 2^b, so a packed
 * element reveals no more than a full one.
 */

/** Bytes one element takes on the wire at `bits` (16, 24 or 32). */
export function packedElementBytes(bits: number): 2 | 3 | 4 {
  if (bits !== 16 && bits !== 24 && bits !== 32) {
    throw new CohortError('CONFIG_UNSAFE', `no packed encoding of ${bits} bits`);
  }
  return (bits / 8) as 2 | 3 | 4;
}

/**
 * The low `bits` bits of each value, little-endian, `bits / 8` bytes per value; the higher
 * bits are dropped. At 32 bits this is {@link uint32ToBytesLE}: on a little-endian host a view
 * of the values, not a copy (the client's masked vector is not used again after sending).
 */
export function packLowBits(values: Uint32Array, bits: number): Uint8Array {
  const width = packedElementBytes(bits);
  if (width === 4) return uint32ToBytesLE(values);
  const n = values.length;
  const out = new Uint8Array(n * width);
  // A client's masked vector (allocateWrapVector) lives in a SIMD kernel's memory: packed there.
  if (n >= SIMD_MIN_ELEMENTS && simdPackLowBits(values, out, width)) return out;
  // Uint8Array stores keep the low 8 bits of what is assigned: no masking needed.
  if (width === 3) {
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      const v = values[i]!;
      out[j] = v;
      out[j + 1] = v >>> 8;
      out[j + 2] = v >>> 16;
    }
  } else {
    for (let i = 0, j = 0; i < n; i++, j += 2) {
      const v = values[i]!;
      out[j] = v;
      out[j + 1] = v >>> 8;
    }
  }
  return out;
}

/**
 * target[i] += the i-th packed element (mod 2^32) for every element of `target`: the
 * coordinator's fold of one masked input, unpacking and adding in one pass so no per-client
 * Uint32Array is built. Into a target from allocateWrapVector (the coordinator's accumulator)
 * the SIMD kernels unpack and add (shared/simd/kernels.ts, simdAddPacked); otherwise, at 32
 * bits, {@link wrapAddInto} over a view of the bytes (a copy only when they are not 4-byte
 * aligned), and at 24 or 16 bits the JavaScript loop below, with identical results. Throws
 * UPDATE_SHAPE unless `packed` holds exactly target.length elements of `bits / 8` bytes.
 */
export function addPackedInto(target: Uint32Array, packed: Uint8Array, bits: number): void {
  const width = packedElementBytes(bits);
  const n = target.length;
  if (packed.length !== n * width) {
    throw new CohortError(
      'UPDATE_SHAPE',
      `packed vector has ${packed.length} bytes, ${n} elements of ${bits} bits need ${n * width}`,
    );
  }
  // A target from allocateWrapVector lives in a SIMD kernel's memory: unpacked there, 128 bits
  // at a time, from a copy of the bytes in its scratch region (so alignment does not matter).
  if (n >= SIMD_MIN_ELEMENTS && simdAddPacked(target, packed, width)) return;
  if (width === 4) {
    wrapAddInto(target, 0, bytesToUint32LE(packed), 1);
    return;
  }
  if (width === 3) {
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      target[i] = target[i]! + (packed[j]! | (packed[j + 1]! << 8) | (packed[j + 2]! << 16));
    }
  } else {
    for (let i = 0, j = 0; i < n; i++, j += 2) {
      target[i] = target[i]! + (packed[j]! | (packed[j + 1]! << 8));
    }
  }
}
