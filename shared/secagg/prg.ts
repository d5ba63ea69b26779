import { CohortError } from '../errors';
import { SECAGG_DOMAIN, bytesToUint32LE, hash32, wipe } from './encoding';
import { SIMD_MIN_ELEMENTS, simdWrapAdd } from '../simd/kernels';

/**
 * The mask generator: an AES-256-CTR keystream. In a browser it comes from WebCrypto; in Node
 * from node:crypto's cipher (OpenSSL, found at run time through process.getBuiltinModule, so
 * this file still imports nothing of Node's), which is about 1.5x faster per mask here because
 * it streams small cache-sized chunks synchronously instead of awaiting multi-megabyte
 * WebCrypto calls. Both produce the same bytes, proven by the known-answer vectors and by a
 * test that expands every vector under each backend. Seeds are full 256-bit values; the AES
 * key is a domain-separated hash of the seed, so a seed used elsewhere (e.g. a Shamir-shared
 * value) never doubles as a raw key.
 */

/** Elements (4 bytes each) produced per WebCrypto call: large calls, bounded peak memory. */
export const PRG_CHUNK_ELEMENTS = 1 << 20;

/** Length in bytes of every mask seed. */
export const SEED_LENGTH = 32;

const BLOCK_BYTES = 16;

/** Elements per node:crypto `update` call: 64 KiB of keystream, which stays in cache. */
const NODE_CIPHER_CHUNK_ELEMENTS = 1 << 14;

/** Which AES-256-CTR implementation expands masks; 'auto' prefers node:crypto where present. */
export type PrgBackend = 'auto' | 'webcrypto' | 'node-cipher';

let forcedPrgBackend: PrgBackend = 'auto';

/**
 * Forces one keystream implementation, or returns to detection. Process-wide on purpose, like
 * setSecAggCryptoBackend: meant for tests that prove both give identical masks.
 */
export function setPrgBackend(backend: PrgBackend): void {
  forcedPrgBackend = backend;
}

/** The part of node:crypto the PRG uses, typed here so shared/ needs no Node typings. */
interface NodeCipherModule {
  createCipheriv(
    algorithm: 'aes-256-ctr',
    key: Uint8Array,
    iv: Uint8Array,
  ): { update(data: Uint8Array): Uint8Array; final(): Uint8Array };
}

function nodeCipherModule(): NodeCipherModule | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const mod = proc?.getBuiltinModule?.('node:crypto') as Partial<NodeCipherModule> | undefined;
  return typeof mod?.createCipheriv === 'function' ? (mod as NodeCipherModule) : undefined;
}

/** The backend masks are expanded with now (after 'auto' is resolved). */
export function activePrgBackend(): Exclude<PrgBackend, 'auto'> {
  if (forcedPrgBackend === 'node-cipher') {
    if (!nodeCipherModule()) {
      throw new CohortError('INTERNAL', 'node:crypto is not available here');
    }
    return 'node-cipher';
  }
  if (forcedPrgBackend === 'webcrypto') return 'webcrypto';
  return nodeCipherModule() ? 'node-cipher' : 'webcrypto';
}

/** The AES-256 key a seed expands under; exported so tests can recompute the keystream. */
export function prgKeyFromSeed(seed: Uint8Array): Uint8Array {
  if (seed.length !== SEED_LENGTH) {
    throw new CohortError(
      'INTERNAL',
      `mask seeds must be ${SEED_LENGTH} bytes, got ${seed.length}`,
    );
  }
  return hash32(SECAGG_DOMAIN.prgKey, [seed]);
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new CohortError('INTERNAL', 'WebCrypto (crypto.subtle) is not available here');
  return s;
}

async function importSeed(seed: Uint8Array): Promise<CryptoKey> {
  const keyBytes = new Uint8Array(prgKeyFromSeed(seed));
  try {
    return await subtle().importKey('raw', keyBytes, { name: 'AES-CTR' }, false, ['encrypt']);
  } finally {
    wipe(keyBytes);
  }
}

/** 16-byte CTR counter block whose low 64 bits (big-endian) are `blockIndex`. */
function counterBlock(blockIndex: number): Uint8Array<ArrayBuffer> {
  const counter = new Uint8Array(BLOCK_BYTES);
  const view = new DataView(counter.buffer);
  // Stryker disable next-line ArithmeticOperator,BooleanLiteral: block indices stay below 2^32 (that is a 64 GiB mask, past any typed array), so this word is 0 either way.
  view.setUint32(8, Math.floor(blockIndex / 2 ** 32), false);
  view.setUint32(12, blockIndex >>> 0, false);
  return counter;
}

/**
 * Calls `consume(offset, chunk)` for consecutive keystream chunks covering `length` elements,
 * requesting the next chunk from WebCrypto while the current one is consumed.
 */
async function streamKeystream(
  seed: Uint8Array,
  length: number,
  chunkElements: number,
  consume: (offset: number, chunk: Uint32Array) => void,
  startElement = 0,
): Promise<void> {
  // Stryker disable next-line ConditionalExpression: a negative length never gets here: expandMask's new Uint32Array(length) refuses it first and a target's length is never negative.
  if (!Number.isInteger(length) || length < 0) {
    throw new CohortError('INTERNAL', `mask length must be a non-negative integer, got ${length}`);
  }
  if (!Number.isInteger(chunkElements) || chunkElements <= 0 || chunkElements % 4 !== 0) {
    throw new CohortError('INTERNAL', 'chunk size must be a positive multiple of 4 elements');
  }
  if (!Number.isInteger(startElement) || startElement < 0 || startElement % 4 !== 0) {
    throw new CohortError(
      'INTERNAL',
      `a keystream can start only at a multiple of 4 elements (one AES block), got ${startElement}`,
    );
  }
  if (length === 0) return;
  const firstBlock = startElement / 4;
  if (activePrgBackend() === 'node-cipher') {
    const chunk = Math.min(chunkElements, NODE_CIPHER_CHUNK_ELEMENTS);
    streamNodeKeystream(seed, length, chunk, consume, firstBlock);
    return;
  }
  const key = await importSeed(seed);
  const zeros = new Uint8Array(Math.min(chunkElements, roundUp4(length)) * 4);
  const request = (offset: number): Promise<ArrayBuffer> => {
    const elements = Math.min(chunkElements, roundUp4(length - offset));
    // Stryker disable next-line ConditionalExpression,ArithmeticOperator: forcing the subarray (false, or elements / 4, never equal) gives the same bytes as zeros; the test only skips a view.
    const input = elements * 4 === zeros.length ? zeros : zeros.subarray(0, elements * 4);
    return subtle().encrypt(
      { name: 'AES-CTR', counter: counterBlock(firstBlock + offset / 4), length: 64 },
      key,
      input,
    );
  };
  let pending = request(0);
  // Stryker disable next-line EqualityOperator: the extra pass at offset = length consumes an empty chunk and requests nothing, a no-op.
  for (let offset = 0; offset < length; offset += chunkElements) {
    const buffer = await pending;
    const next = offset + chunkElements;
    if (next < length) pending = request(next);
    const words = bytesToUint32LE(new Uint8Array(buffer));
    const take = Math.min(chunkElements, length - offset);
    // Stryker disable next-line ConditionalExpression: forcing the subarray gives the same words; the test only skips a view.
    consume(offset, take === words.length ? words : words.subarray(0, take));
  }
}

/**
 * The same keystream from node:crypto: one cipher per seed, starting at counter block
 * `firstBlock`, fed zero chunks in order, so chunk boundaries cannot change the bytes.
 * Synchronous: OpenSSL is fast enough that awaiting between chunks would cost more than it frees.
 */
function streamNodeKeystream(
  seed: Uint8Array,
  length: number,
  chunkElements: number,
  consume: (offset: number, chunk: Uint32Array) => void,
  firstBlock: number,
): void {
  const keyBytes = prgKeyFromSeed(seed);
  const iv = counterBlock(firstBlock);
  const cipher = nodeCipherModule()!.createCipheriv('aes-256-ctr', keyBytes, iv);
  wipe(keyBytes);
  const zeros = new Uint8Array(chunkElements * 4);
  for (let offset = 0; offset < length; offset += chunkElements) {
    const take = Math.min(chunkElements, length - offset);
    const bytes = cipher.update(take === chunkElements ? zeros : zeros.subarray(0, take * 4));
    consume(offset, bytesToUint32LE(bytes)); // a view where aligned, else a copy
  }
  cipher.final();
}

function roundUp4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/**
 * The mask PRG(seed) as `length` uint32 elements: AES-256-CTR over zero blocks, counter starting
 * at 0, element i = little-endian bytes 4i..4i+3 of the keystream. Mostly for tests and tools;
 * the protocol uses {@link addMask}, which never holds a whole mask in memory.
 */
export async function expandMask(
  seed: Uint8Array,
  length: number,
  chunkElements = PRG_CHUNK_ELEMENTS,
): Promise<Uint32Array> {
  const out = new Uint32Array(length);
  await streamKeystream(seed, length, chunkElements, (offset, chunk) => out.set(chunk, offset));
  return out;
}

/**
 * target += sign * PRG(seed) (mod 2^32), in place and chunk by chunk: how clients add masks and
 * how the coordinator removes them. Uint32Array stores wrap modulo 2^32 by definition, so the
 * loop is a plain add with no per-element allocation. With `startElement` (a multiple of 4: CTR
 * mode seeks by whole AES blocks) target[i] gets element startElement + i of the mask, so
 * several threads can each remove the masks from one slice of a vector.
 */
export async function addMask(
  target: Uint32Array,
  seed: Uint8Array,
  sign: 1 | -1,
  chunkElements = PRG_CHUNK_ELEMENTS,
  startElement = 0,
): Promise<void> {
  await streamKeystream(
    seed,
    target.length,
    chunkElements,
    (offset, chunk) => wrapAddInto(target, offset, chunk, sign),
    startElement,
  );
}

/**
 * target[offset + i] += sign * source[i] (mod 2^32) for every i: the one inner loop of masking,
 * unmasking and the coordinator's fold of masked inputs. A target from allocateWrapVector (at
 * least SIMD_MIN_ELEMENTS long) takes the SIMD wrap-add kernel (shared/simd/kernels.ts);
 * anything else the JavaScript loop, unrolled by four, which V8 runs about 1.5x faster than
 * the plain loop (it vectorizes neither); Uint32Array stores wrap. Both give the same bytes.
 */
export function wrapAddInto(
  target: Uint32Array,
  offset: number,
  source: Uint32Array,
  sign: 1 | -1,
): void {
  const n = source.length;
  // A target from allocateWrapVector lives in a SIMD kernel's memory: 128-bit lanes there.
  if (n >= SIMD_MIN_ELEMENTS && simdWrapAdd(target, offset, source, sign)) return;
  const unrolled = n - (n % 4);
  let i = 0;
  let j = offset;
  if (sign === 1) {
    for (; i < unrolled; i += 4, j += 4) {
      target[j] = target[j]! + source[i]!;
      target[j + 1] = target[j + 1]! + source[i + 1]!;
      target[j + 2] = target[j + 2]! + source[i + 2]!;
      target[j + 3] = target[j + 3]! + source[i + 3]!;
    }
    for (; i < n; i++, j++) target[j] = target[j]! + source[i]!;
  } else {
    for (; i < unrolled; i += 4, j += 4) {
      target[j] = target[j]! - source[i]!;
      target[j + 1] = target[j + 1]! - source[i + 1]!;
      target[j + 2] = target[j + 2]! - source[i + 2]!;
      target[j + 3] = target[j + 3]! - source[i + 3]!;
    }
    for (; i < n; i++, j++) target[j] = target[j]! - source[i]!;
  }
}
