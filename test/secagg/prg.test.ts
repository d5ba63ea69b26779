import { createCipheriv, createHash } from 'node:crypto';
import {
  activePrgBackend,
  addMask,
  expandMask,
  prgKeyFromSeed,
  setPrgBackend,
  wrapAddInto,
} from '../../shared/secagg';

/**
 * The documented key derivation, rebuilt with node:crypto alone: the first 32 bytes of
 * SHA-512 over encodeFields('cohort/secagg/v1/prg-key', [seed]), i.e. for the label and the
 * seed a tag byte (1 = text, 0 = bytes), a 4-byte big-endian length and the bytes.
 */
function referenceKey(seed: Uint8Array): Buffer {
  const field = (tag: number, bytes: Buffer): Buffer => {
    const header = Buffer.alloc(5);
    header[0] = tag;
    header.writeUInt32BE(bytes.length, 1);
    return Buffer.concat([header, bytes]);
  };
  const encoded = Buffer.concat([
    field(1, Buffer.from('cohort/secagg/v1/prg-key', 'utf8')),
    field(0, Buffer.from(seed)),
  ]);
  return createHash('sha512').update(encoded).digest().subarray(0, 32);
}

/** The keystream standard AES-256-CTR (zero IV, 128-bit big-endian counter) gives, as LE uint32. */
function referenceMask(seed: Uint8Array, length: number): Uint32Array {
  const cipher = createCipheriv('aes-256-ctr', referenceKey(seed), Buffer.alloc(16));
  const bytes = cipher.update(Buffer.alloc(Math.ceil(length / 4) * 16));
  const out = new Uint32Array(length);
  for (let i = 0; i < length; i++) out[i] = bytes.readUInt32LE(4 * i);
  return out;
}

/** The 16-byte CTR counter block of AES block `index` (big-endian, high bytes zero). */
function counterHex(index: number): string {
  const block = Buffer.alloc(16);
  block.writeUInt32BE(index, 12);
  return block.toString('hex');
}

interface EncryptCall {
  /** The CTR counter block, hex. */
  counter: string;
  /** Bytes of zeros handed to WebCrypto (the keystream bytes asked for). */
  bytes: number;
  /** Size of the buffer those bytes sit in (what was allocated for them). */
  bufferBytes: number;
}

/** Runs `run` and records every AES-CTR call it makes to WebCrypto. */
async function recordEncrypt(run: () => Promise<unknown>): Promise<EncryptCall[]> {
  const encrypt = jest.spyOn(crypto.subtle, 'encrypt');
  try {
    await run();
    return encrypt.mock.calls.map(([algorithm, , data]) => {
      const params = algorithm as AesCtrParams;
      const bytes = data as Uint8Array;
      expect(params.name).toBe('AES-CTR');
      expect(params.length).toBe(64);
      return {
        counter: Buffer.from(params.counter as Uint8Array).toString('hex'),
        bytes: bytes.byteLength,
        bufferBytes: bytes.buffer.byteLength,
      };
    });
  } finally {
    encrypt.mockRestore();
  }
}

const seedA = new Uint8Array(32).map((_, i) => i);
const seedB = new Uint8Array(32).map((_, i) => 255 - i);

describe('AES-256-CTR mask generator (WebCrypto)', () => {
  beforeAll(() => setPrgBackend('webcrypto'));
  afterAll(() => setPrgBackend('auto'));

  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 257, 4096])(
    'matches node:crypto AES-256-CTR for %i elements',
    async (length) => {
      expect(Array.from(await expandMask(seedA, length))).toEqual(
        Array.from(referenceMask(seedA, length)),
      );
    },
  );

  it('pins the key and the first keystream bytes of a counting seed', async () => {
    // Computed once with referenceKey / referenceMask above (node:crypto only) and pinned, so
    // the reference and the implementation cannot drift together.
    expect(referenceKey(seedA).toString('hex')).toBe(
      'e41ab1e36ca73b952ad6b2282f3a7816be8068b283af891ecb6dc2258d1f4b2d',
    );
    expect(Buffer.from(prgKeyFromSeed(seedA)).toString('hex')).toBe(
      referenceKey(seedA).toString('hex'),
    );
    const mask = await expandMask(seedA, 6);
    expect(Buffer.from(mask.buffer).toString('hex')).toBe(
      '0b1ce7e3ccc2a7b1420c32e8141193911006181d6d588bfc',
    );
  });

  it('continues the counter across chunk boundaries', async () => {
    // Chunks of 8 elements = 2 AES blocks: 37 elements need 5 calls, the last one partial.
    expect(Array.from(await expandMask(seedB, 37, 8))).toEqual(
      Array.from(referenceMask(seedB, 37)),
    );
    const big = (1 << 20) + 3; // default chunk size plus a partial chunk
    const mask = await expandMask(seedB, big);
    const reference = referenceMask(seedB, big);
    expect(Buffer.from(mask.buffer).equals(Buffer.from(reference.buffer))).toBe(true);
  });

  it.each([
    [38, 12],
    [24, 12],
    [25, 4],
    [11, 8],
  ])('gives the same %i elements in chunks of %i as in one piece', async (length, chunk) => {
    const reference = Array.from(referenceMask(seedA, length));
    expect(Array.from(await expandMask(seedA, length, chunk))).toEqual(reference);
    const target = new Uint32Array(length).fill(7);
    await addMask(target, seedA, 1, chunk);
    expect(Array.from(target)).toEqual(reference.map((x) => (x + 7) >>> 0));
  });

  it('asks WebCrypto for one chunk per call and only the blocks the last chunk needs', async () => {
    // 38 elements in chunks of 12: three full chunks (3 blocks, 48 bytes) and 2 elements, which
    // need one block; every call reads from one chunk-sized buffer of zeros.
    const partial = await recordEncrypt(() => expandMask(seedB, 38, 12));
    expect(partial).toEqual([
      { counter: counterHex(0), bytes: 48, bufferBytes: 48 },
      { counter: counterHex(3), bytes: 48, bufferBytes: 48 },
      { counter: counterHex(6), bytes: 48, bufferBytes: 48 },
      { counter: counterHex(9), bytes: 16, bufferBytes: 48 },
    ]);
    // A length that is a multiple of the chunk: exactly two calls, none past the end.
    const whole = await recordEncrypt(() => addMask(new Uint32Array(24), seedB, -1, 12));
    expect(whole).toEqual([
      { counter: counterHex(0), bytes: 48, bufferBytes: 48 },
      { counter: counterHex(3), bytes: 48, bufferBytes: 48 },
    ]);
    // Shorter than one chunk: the buffer is sized to the mask (2 blocks), not to the chunk.
    const short = await recordEncrypt(() => expandMask(seedB, 5));
    expect(short).toEqual([{ counter: counterHex(0), bytes: 32, bufferBytes: 32 }]);
  });

  it('imports the AES key as non-extractable and wipes the raw key bytes afterwards', async () => {
    const importKey = jest.spyOn(crypto.subtle, 'importKey');
    const encrypt = jest.spyOn(crypto.subtle, 'encrypt');
    try {
      expect(Array.from(await expandMask(seedA, 4))).toEqual(Array.from(referenceMask(seedA, 4)));
      expect(importKey).toHaveBeenCalledTimes(1);
      const [format, keyData, , extractable, usages] = importKey.mock.calls[0]!;
      expect(format).toBe('raw');
      expect(extractable).toBe(false);
      expect(usages).toEqual(['encrypt']);
      // The copy of the key handed to WebCrypto was zeroed once the import was done.
      expect(Array.from(keyData as Uint8Array)).toEqual(new Array<number>(32).fill(0));
      const key = encrypt.mock.calls[0]![1];
      expect(key.extractable).toBe(false);
      await expect(crypto.subtle.exportKey('raw', key)).rejects.toThrow();
    } finally {
      importKey.mockRestore();
      encrypt.mockRestore();
    }
  });

  it('an empty mask is empty and costs no WebCrypto call', async () => {
    const importKey = jest.spyOn(crypto.subtle, 'importKey');
    try {
      const calls = await recordEncrypt(async () => {
        expect(await expandMask(seedA, 0)).toHaveLength(0);
        await addMask(new Uint32Array(0), seedA, 1);
        await addMask(new Uint32Array(0), seedA, -1, 4);
      });
      expect(calls).toEqual([]);
      expect(importKey).not.toHaveBeenCalled();
    } finally {
      importKey.mockRestore();
    }
  });

  it('refuses a length that is not a non-negative integer', async () => {
    // new Uint32Array(NaN) is empty, so only the PRG's own check can refuse it.
    await expect(expandMask(seedA, NaN)).rejects.toThrow(
      /^INTERNAL: mask length must be a non-negative integer, got NaN$/,
    );
  });

  it.each([0, -4, 6, 2, 2.5, NaN, Infinity])(
    'refuses chunk size %p, even for an empty mask',
    async (chunk) => {
      const message = /^INTERNAL: chunk size must be a positive multiple of 4 elements$/;
      await expect(expandMask(seedA, 0, chunk)).rejects.toThrow(message);
      await expect(addMask(new Uint32Array(0), seedA, 1, chunk)).rejects.toThrow(message);
      // (A zero chunk would never advance over a non-empty mask, so only the empty one is tried.)
      if (chunk !== 0) await expect(expandMask(seedA, 9, chunk)).rejects.toThrow(message);
    },
  );

  it('reports a missing WebCrypto as INTERNAL', async () => {
    const descriptor = Object.getOwnPropertyDescriptor(globalThis, 'crypto')!;
    try {
      for (const replacement of [undefined, {}]) {
        Object.defineProperty(globalThis, 'crypto', { value: replacement, configurable: true });
        await expect(expandMask(seedA, 4)).rejects.toThrow(
          /^INTERNAL: WebCrypto \(crypto\.subtle\) is not available here$/,
        );
      }
    } finally {
      Object.defineProperty(globalThis, 'crypto', descriptor);
    }
    expect(Array.from(await expandMask(seedA, 4))).toEqual(Array.from(referenceMask(seedA, 4)));
  });

  it('keys AES with a domain-separated hash of the seed, never the seed itself', async () => {
    expect(Buffer.from(prgKeyFromSeed(seedA)).equals(Buffer.from(seedA))).toBe(false);
    const raw = createCipheriv('aes-256-ctr', seedA, Buffer.alloc(16)).update(Buffer.alloc(16));
    const mask = await expandMask(seedA, 4);
    expect(Buffer.from(mask.buffer).equals(raw)).toBe(false);
  });

  it('adds and removes masks mod 2^32 in place', async () => {
    const length = 1000;
    const original = new Uint32Array(length).map((_, i) => (i * 2654435761) >>> 0);
    const target = original.slice();
    await addMask(target, seedA, 1, 64);
    const mask = referenceMask(seedA, length);
    for (let i = 0; i < length; i++) expect(target[i]).toBe((original[i]! + mask[i]!) >>> 0);
    await addMask(target, seedB, 1);
    await addMask(target, seedA, -1);
    await addMask(target, seedB, -1, 12);
    expect(Array.from(target)).toEqual(Array.from(original));
  });

  it('gives different streams for different seeds and refuses short seeds', async () => {
    const a = await expandMask(seedA, 64);
    const b = await expandMask(seedB, 64);
    expect(a.some((x, i) => x !== b[i])).toBe(true);
    await expect(expandMask(new Uint8Array(16), 4)).rejects.toThrow(/32 bytes/);
  });
});

describe("AES-256-CTR mask generator (node:crypto's cipher)", () => {
  afterEach(() => setPrgBackend('auto'));

  it('is what Node picks on its own', () => {
    expect(activePrgBackend()).toBe('node-cipher');
    setPrgBackend('webcrypto');
    expect(activePrgBackend()).toBe('webcrypto');
  });

  it('expands the same elements as WebCrypto, across its 64 KiB chunks and any chunk size', async () => {
    for (const [length, chunk] of [
      [5, undefined],
      [16_385, undefined],
      [40_001, 12],
      [70_000, 1 << 20],
    ] as const) {
      setPrgBackend('node-cipher');
      const viaNode = await expandMask(seedB, length, chunk);
      setPrgBackend('webcrypto');
      const viaWebCrypto = await expandMask(seedB, length, chunk);
      expect(Buffer.from(viaNode.buffer).equals(Buffer.from(viaWebCrypto.buffer))).toBe(true);
      const head = Math.min(9, length);
      expect(Array.from(viaNode.subarray(0, head))).toEqual(Array.from(referenceMask(seedB, head)));
    }
  });

  it('adds and removes masks mod 2^32 in place, interchangeably with WebCrypto', async () => {
    const original = new Uint32Array(20_000).map((_, i) => (i * 2654435761) >>> 0);
    const target = original.slice();
    setPrgBackend('node-cipher');
    await addMask(target, seedA, 1);
    expect(target.some((x, i) => x !== original[i])).toBe(true);
    setPrgBackend('webcrypto');
    await addMask(target, seedA, -1);
    expect(Array.from(target)).toEqual(Array.from(original));
  });

  it('refuses short seeds and says when node:crypto is missing', async () => {
    setPrgBackend('node-cipher');
    await expect(expandMask(new Uint8Array(16), 4)).rejects.toThrow(/32 bytes/);
    const getBuiltinModule = process.getBuiltinModule;
    try {
      Object.defineProperty(process, 'getBuiltinModule', { value: undefined, configurable: true });
      expect(() => activePrgBackend()).toThrow(/^INTERNAL: node:crypto is not available here$/);
      setPrgBackend('auto');
      expect(activePrgBackend()).toBe('webcrypto');
      expect(Array.from(await expandMask(seedA, 4))).toEqual(Array.from(referenceMask(seedA, 4)));
    } finally {
      Object.defineProperty(process, 'getBuiltinModule', {
        value: getBuiltinModule,
        configurable: true,
        writable: true,
      });
    }
  });
});

describe('wrapAddInto', () => {
  it('adds and subtracts mod 2^32 at an offset, for every tail length of the unrolled loop', () => {
    for (let n = 0; n <= 9; n++) {
      const source = new Uint32Array(n).map((_, i) => (i % 2 === 0 ? 0xffffffff : i + 1));
      const target = new Uint32Array(n + 3).fill(2);
      wrapAddInto(target, 2, source, 1);
      const expected = Array.from({ length: n + 3 }, (_, j) =>
        j < 2 || j >= n + 2 ? 2 : (2 + source[j - 2]!) % 2 ** 32,
      );
      expect(Array.from(target)).toEqual(expected);
      wrapAddInto(target, 2, source, -1);
      expect(Array.from(target)).toEqual(new Array(n + 3).fill(2));
    }
    const low = new Uint32Array([0, 1, 2, 3, 4]);
    wrapAddInto(low, 0, new Uint32Array([1, 2, 3, 4, 5]), -1);
    expect(Array.from(low)).toEqual([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]);
  });
});

describe('addMask from a keystream offset (one slice of a mask, for unmasking threads)', () => {
  afterEach(() => setPrgBackend('auto'));
  const seed = new Uint8Array(32).map((_, i) => 255 - i);

  it.each(['webcrypto', 'node-cipher'] as const)(
    '%s: target[i] gets mask element start + i, across chunk boundaries',
    async (backend) => {
      setPrgBackend(backend);
      const full = referenceMask(seed, 5000);
      for (const [start, length, chunk] of [
        [0, 10, 8],
        [4, 9, 8],
        [1024, 3000, 256],
        [4996, 4, 4],
      ] as const) {
        const slice = new Uint32Array(length);
        await addMask(slice, seed, 1, chunk, start);
        expect(Array.from(slice)).toEqual(Array.from(full.subarray(start, start + length)));
      }
    },
  );

  it('refuses an offset that is not a whole AES block (4 elements)', async () => {
    for (const start of [1, 6, -4, 2.5]) {
      await expect(addMask(new Uint32Array(4), seed, 1, 8, start)).rejects.toThrow(/multiple of 4/);
    }
  });
});
