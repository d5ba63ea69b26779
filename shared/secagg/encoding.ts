import { utf8Bytes } from '../bytes';
import nacl from 'tweetnacl';
import { CohortError } from '../errors';

/**
 * Domain-separation labels. Every signature, hash and sealed bundle of the protocol starts
 * with one of these, so a value produced for one purpose can never be replayed as another
 * (a consistency signature is not an advertisement, a pairwise seed is not a PRG key).
 */
export const SECAGG_DOMAIN = {
  advertiseKeys: 'cohort/secagg/v1/advertise-keys',
  consistency: 'cohort/secagg/v1/consistency-check',
  shareBundle: 'cohort/secagg/v1/share-bundle',
  pairwiseSeed: 'cohort/secagg/v1/pairwise-seed',
  prgKey: 'cohort/secagg/v1/prg-key',
  graphSeed: 'cohort/secagg/v1/graph-seed',
  graphStream: 'cohort/secagg/v1/graph-stream',
  configHash: 'cohort/secagg/v1/config-hash',
  roundView: 'cohort/secagg/v2/round-view',
  maskedInput: 'cohort/secagg/v2/masked-input',
} as const;

/** A field of a canonical encoding: text (UTF-8) or raw bytes, tagged so they never collide. */
export type EncodedField = string | Uint8Array;

const TAG_BYTES = 0;
const TAG_TEXT = 1;
const HEADER = 5; // 1 tag byte + 4-byte big-endian length

/**
 * Unambiguous, platform-independent serialisation of a domain label and fields: each field is
 * tagged and length-prefixed, so ("ab","c") and ("a","bc") sign differently. Used for every
 * signed or sealed structure instead of JSON, whose key order and escaping vary.
 */
export function encodeFields(domain: string, fields: readonly EncodedField[]): Uint8Array {
  const parts: { tag: number; bytes: Uint8Array }[] = [{ tag: TAG_TEXT, bytes: utf8Bytes(domain) }];
  for (const f of fields) {
    parts.push(
      typeof f === 'string' ? { tag: TAG_TEXT, bytes: utf8Bytes(f) } : { tag: TAG_BYTES, bytes: f },
    );
  }
  let total = 0;
  for (const p of parts) total += HEADER + p.bytes.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const p of parts) {
    out[offset] = p.tag;
    view.setUint32(offset + 1, p.bytes.length, false);
    out.set(p.bytes, offset + HEADER);
    offset += HEADER + p.bytes.length;
  }
  return out;
}

/**
 * Inverse of {@link encodeFields} for structures we receive sealed (share bundles): checks the
 * domain and the exact field kinds, and throws MESSAGE_INVALID on any malformation, so a
 * decrypted-but-garbled bundle is never half-trusted.
 */
export function decodeFields(
  bytes: Uint8Array,
  domain: string,
  kinds: readonly ('text' | 'bytes')[],
): EncodedField[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: EncodedField[] = [];
  let offset = 0;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const expected: ('text' | 'bytes')[] = ['text', ...kinds];
  for (const kind of expected) {
    if (offset + HEADER > bytes.length) throw invalid('truncated encoding');
    const tag = bytes[offset];
    const length = view.getUint32(offset + 1, false);
    const start = offset + HEADER;
    if (start + length > bytes.length) throw invalid('truncated field');
    if (tag !== (kind === 'text' ? TAG_TEXT : TAG_BYTES)) throw invalid('unexpected field kind');
    const raw = bytes.slice(start, start + length);
    if (kind === 'text') {
      try {
        fields.push(decoder.decode(raw));
      } catch {
        throw invalid('field is not UTF-8');
      }
    } else {
      fields.push(raw);
    }
    offset = start + length;
  }
  if (offset !== bytes.length) throw invalid('trailing bytes after encoding');
  if (fields[0] !== domain) throw invalid('wrong domain label');
  return fields.slice(1);
}

function invalid(message: string): CohortError {
  return new CohortError('MESSAGE_INVALID', message);
}

/**
 * A 32-byte domain-separated hash (first half of SHA-512, tweetnacl's only hash): derives
 * seeds and keys from shared secrets so raw X25519 outputs are never used as keys directly.
 */
export function hash32(domain: string, fields: readonly EncodedField[]): Uint8Array {
  return nacl.hash(encodeFields(domain, fields)).slice(0, 32);
}

/** Constant-length comparison of two byte strings (lengths are public). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  // Stryker disable next-line EqualityOperator: the extra step at i = a.length XORs two missing entries (undefined ^ undefined is 0), a no-op.
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Overwrites secret material we no longer need, best effort in a garbage-collected language. */
export function wipe(...arrays: (Uint8Array | undefined)[]): void {
  for (const a of arrays) a?.fill(0);
}

// Stryker disable next-line all: a module-load probe of the host's byte order; encoding.test.ts checks both answers by reloading the module on a simulated big-endian host, which StrykerJS cannot attribute to a test.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Wire form of a vector mod 2^32: little-endian bytes, whatever the host's endianness. On
 * little-endian hosts (all that run JavaScript in practice) this is a view, not a copy.
 */
export function uint32ToBytesLE(values: Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint32(4 * i, values[i]!, true);
  return out;
}

/**
 * Reads a little-endian vector mod 2^32 from bytes of any alignment (socket.io Buffers often
 * sit at odd offsets of a shared pool); copies only when the bytes cannot be viewed in place.
 */
export function bytesToUint32LE(bytes: Uint8Array): Uint32Array {
  if (bytes.length % 4 !== 0) throw invalid('vector byte length is not a multiple of 4');
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
    return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  }
  const out = new Uint32Array(bytes.length / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(4 * i, true);
  return out;
}

/** True when the host stores typed arrays little-endian (the PRG relies on it for speed). */
export function isLittleEndianHost(): boolean {
  return LITTLE_ENDIAN;
}
