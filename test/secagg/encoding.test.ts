import { CohortError } from '../../shared/errors';
import type * as encoding from '../../shared/secagg/encoding';
import {
  bytesEqual,
  bytesToUint32LE,
  decodeFields,
  encodeFields,
  isLittleEndianHost,
  uint32ToBytesLE,
  wipe,
} from '../../shared/secagg/encoding';

/**
 * Direct tests of the byte-level helpers every signed, sealed or hashed structure of secure
 * aggregation goes through. Whole rounds only ever feed these well-formed input, so the
 * refusals of decodeFields (a sealed share bundle that decrypts to garbage), the unequal
 * cases of bytesEqual, wipe, and the aligned, unaligned and big-endian paths of the vector
 * codec are pinned here, on hand-written byte strings: each field is 1 tag byte (1 = UTF-8
 * text, 0 = raw bytes), a 4-byte big-endian length, then the bytes.
 */

/** The error `fn` throws (fails the test when it returns). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** Asserts `fn` throws CohortError MESSAGE_INVALID with exactly `message`. */
function expectInvalid(fn: () => unknown, message: string): void {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(CohortError);
  expect(error).toMatchObject({ code: 'MESSAGE_INVALID', message: `MESSAGE_INVALID: ${message}` });
}

/** The domain label 'd' as the first field: tag 1, length 1, 'd'. */
const DOMAIN_D = [1, 0, 0, 0, 1, 0x64];

describe('decodeFields reads exactly the documented encoding', () => {
  it('encodes and decodes a text and a bytes field as hand-written bytes', () => {
    const bytes = Uint8Array.of(...DOMAIN_D, 1, 0, 0, 0, 2, 0x68, 0x69, 0, 0, 0, 0, 2, 7, 8);
    expect(encodeFields('d', ['hi', Uint8Array.of(7, 8)])).toEqual(bytes);
    expect(decodeFields(bytes, 'd', ['text', 'bytes'])).toEqual(['hi', Uint8Array.of(7, 8)]);
  });

  it('accepts empty fields whose header ends exactly at the end of the input', () => {
    expect(decodeFields(Uint8Array.of(...DOMAIN_D, 0, 0, 0, 0, 0), 'd', ['bytes'])).toEqual([
      new Uint8Array(0),
    ]);
    expect(decodeFields(Uint8Array.of(...DOMAIN_D, 1, 0, 0, 0, 0), 'd', ['text'])).toEqual(['']);
  });

  it('reads an encoding that sits at an offset inside a larger buffer', () => {
    const pool = Uint8Array.of(9, 9, 9, ...DOMAIN_D, 0, 0, 0, 0, 1, 5, 9);
    expect(decodeFields(pool.subarray(3, 15), 'd', ['bytes'])).toEqual([Uint8Array.of(5)]);
  });
});

describe('decodeFields refuses every malformation with MESSAGE_INVALID', () => {
  it('refuses input that ends inside a field header', () => {
    expectInvalid(() => decodeFields(new Uint8Array(0), 'd', []), 'truncated encoding');
    expectInvalid(
      () => decodeFields(Uint8Array.of(...DOMAIN_D, 1, 0, 0), 'd', ['text']),
      'truncated encoding',
    );
  });

  it('refuses a field whose length runs past the end', () => {
    expectInvalid(
      () => decodeFields(Uint8Array.of(...DOMAIN_D, 0, 0, 0, 0, 3, 7), 'd', ['bytes']),
      'truncated field',
    );
    expectInvalid(
      () => decodeFields(Uint8Array.of(...DOMAIN_D, 0, 0xff, 0xff, 0xff, 0xff, 7), 'd', ['bytes']),
      'truncated field',
    );
  });

  it('refuses a field of the wrong kind', () => {
    // Bytes where text is expected, text where bytes are, and a domain label sent as bytes.
    expectInvalid(
      () => decodeFields(Uint8Array.of(...DOMAIN_D, 0, 0, 0, 0, 1, 0x61), 'd', ['text']),
      'unexpected field kind',
    );
    expectInvalid(
      () => decodeFields(Uint8Array.of(...DOMAIN_D, 1, 0, 0, 0, 1, 0x61), 'd', ['bytes']),
      'unexpected field kind',
    );
    expectInvalid(
      () => decodeFields(Uint8Array.of(0, 0, 0, 0, 1, 0x64), 'd', []),
      'unexpected field kind',
    );
  });

  it('refuses a text field that is not valid UTF-8', () => {
    expectInvalid(
      () => decodeFields(Uint8Array.of(...DOMAIN_D, 1, 0, 0, 0, 1, 0xff), 'd', ['text']),
      'field is not UTF-8',
    );
  });

  it('refuses bytes after the last expected field', () => {
    expectInvalid(
      () => decodeFields(Uint8Array.of(...DOMAIN_D, 0), 'd', []),
      'trailing bytes after encoding',
    );
  });

  it('refuses another domain label', () => {
    expectInvalid(
      () => decodeFields(Uint8Array.of(1, 0, 0, 0, 1, 0x65), 'd', []),
      'wrong domain label',
    );
  });
});

describe('bytesEqual', () => {
  it('is true exactly for equal byte strings', () => {
    expect(bytesEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
    expect(bytesEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3))).toBe(true);
    expect(bytesEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4))).toBe(false);
    expect(bytesEqual(Uint8Array.of(0x80, 2), Uint8Array.of(0, 2))).toBe(false);
  });

  it('is false for strings of different lengths, even when one is a prefix of the other', () => {
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 3))).toBe(false);
    expect(bytesEqual(Uint8Array.of(1, 2, 0), Uint8Array.of(1, 2))).toBe(false);
  });
});

describe('wipe', () => {
  it('zeroes every array it is given and skips undefined ones', () => {
    const a = Uint8Array.of(1, 2, 3);
    const b = Uint8Array.of(255);
    wipe(a, undefined, b);
    expect(a).toEqual(new Uint8Array(3));
    expect(b).toEqual(new Uint8Array(1));
  });
});

/** 0x04030201 and 0xdeadbeef, and their little-endian bytes. */
const WORDS = [0x04030201, 0xdeadbeef];
const WORD_BYTES = [1, 2, 3, 4, 0xef, 0xbe, 0xad, 0xde];

describe('the vector codec on this (little-endian) host', () => {
  it('detects the host byte order', () => {
    expect(isLittleEndianHost()).toBe(new Uint8Array(Uint16Array.of(1).buffer)[0] === 1);
  });

  it('writes little-endian bytes as a view of the vector, not a copy', () => {
    const values = Uint32Array.of(7, ...WORDS, 7).subarray(1, 3);
    const bytes = uint32ToBytesLE(values);
    expect(Array.from(bytes)).toEqual(WORD_BYTES);
    expect(bytes.buffer).toBe(values.buffer);
    expect(bytes.byteOffset).toBe(4);
  });

  it('reads 4-byte aligned input as a view, in place', () => {
    const pool = Uint8Array.of(9, 9, 9, 9, ...WORD_BYTES);
    const bytes = pool.subarray(4);
    const values = bytesToUint32LE(bytes);
    expect(Array.from(values)).toEqual(WORDS);
    expect(values.buffer).toBe(pool.buffer);
    expect(values.byteOffset).toBe(4);
  });

  it.each([1, 2, 3])('reads input at byte offset %i by copying it', (offset) => {
    const pool = new Uint8Array(offset + 8);
    pool.set(WORD_BYTES, offset);
    const values = bytesToUint32LE(pool.subarray(offset));
    expect(Array.from(values)).toEqual(WORDS);
    expect(values.buffer).not.toBe(pool.buffer);
  });

  it('refuses a byte length that is not a multiple of 4', () => {
    const message = 'vector byte length is not a multiple of 4';
    expectInvalid(() => bytesToUint32LE(new Uint8Array(5)), message);
    expectInvalid(() => bytesToUint32LE(new Uint8Array(8).subarray(1, 7)), message);
  });
});

/**
 * The module as loaded on a host that stores typed arrays big-endian: its byte-order probe
 * (`new Uint32Array([1])`) runs against a Uint32Array that lays its elements out big-endian,
 * so the portable DataView paths, never taken on a little-endian host, are the ones run.
 */
function loadOnBigEndianHost(): typeof encoding {
  const native = globalThis.Uint32Array;
  class BigEndianUint32Array extends native {
    constructor(values: ArrayLike<number>) {
      super(values.length);
      const view = new DataView(this.buffer);
      for (let i = 0; i < values.length; i++) view.setUint32(4 * i, values[i]!, false);
    }
  }
  let loaded: typeof encoding | undefined;
  globalThis.Uint32Array = BigEndianUint32Array as unknown as Uint32ArrayConstructor;
  try {
    jest.isolateModules(() => {
      loaded = jest.requireActual<typeof encoding>('../../shared/secagg/encoding');
    });
  } finally {
    globalThis.Uint32Array = native;
  }
  return loaded!;
}

describe('the vector codec on a big-endian host (simulated)', () => {
  const bigEndian = loadOnBigEndianHost();

  it('detects the host as big-endian', () => {
    expect(bigEndian.isLittleEndianHost()).toBe(false);
  });

  it('writes little-endian bytes into a fresh copy', () => {
    const values = Uint32Array.of(7, ...WORDS, 7).subarray(1, 3);
    const bytes = bigEndian.uint32ToBytesLE(values);
    expect(Array.from(bytes)).toEqual(WORD_BYTES);
    expect(bytes.buffer).not.toBe(values.buffer);
    expect(bytes.byteLength).toBe(8);
    expect(bigEndian.uint32ToBytesLE(new Uint32Array(0))).toHaveLength(0);
  });

  it('reads little-endian bytes into a fresh copy, aligned or not', () => {
    const aligned = Uint8Array.of(...WORD_BYTES);
    const fromAligned = bigEndian.bytesToUint32LE(aligned);
    expect(Array.from(fromAligned)).toEqual(WORDS);
    expect(fromAligned.buffer).not.toBe(aligned.buffer);
    const pool = Uint8Array.of(9, ...WORD_BYTES);
    expect(Array.from(bigEndian.bytesToUint32LE(pool.subarray(1)))).toEqual(WORDS);
  });
});
