import { asBytes, isUint8Array } from '../bytes';
import { CohortError } from '../errors';

/**
 * socket.io sends every binary field as its own attachment and refuses packets with more
 * than 10 of them, while a secure-aggregation message carries one key, nonce or share per
 * peer. Packing replaces each Uint8Array with `{ $bin: [offset, length] }` and concatenates
 * the bytes into one blob, so a message has exactly one attachment whatever the cohort size.
 */
export interface PackedMessage {
  body: unknown;
  blob: Uint8Array;
}

const MAX_DEPTH = 16;

/** Packs every Uint8Array inside `value` (objects and arrays, any depth) into one blob. */
export function packBinary(value: unknown): PackedMessage {
  const parts: Uint8Array[] = [];
  let length = 0;
  const walk = (v: unknown, depth: number): unknown => {
    if (depth > MAX_DEPTH) throw new CohortError('INTERNAL', 'message nested too deeply to pack');
    if (isUint8Array(v)) {
      parts.push(v);
      const ref = { $bin: [length, v.byteLength] };
      length += v.byteLength;
      return ref;
    }
    if (Array.isArray(v)) return v.map((item) => walk(item, depth + 1));
    if (typeof v === 'object' && v !== null) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(v)) out[key] = walk(item, depth + 1);
      return out;
    }
    return v;
  };
  const body = walk(value, 0);
  const blob = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    blob.set(part, offset);
    offset += part.byteLength;
  }
  return { body, blob };
}

/**
 * Reverses {@link packBinary} on untrusted input: every reference must lie inside the blob
 * (else MESSAGE_INVALID); the result holds copies, never views of the transport's buffer.
 * Field-by-field validation is still the caller's job.
 */
export function unpackBinary(packed: unknown): unknown {
  if (typeof packed !== 'object' || packed === null) {
    throw new CohortError('MESSAGE_INVALID', 'packed message must be an object');
  }
  const { body, blob } = packed as { body?: unknown; blob?: unknown };
  const bytes = asBytes(blob);
  if (!bytes) throw new CohortError('MESSAGE_INVALID', 'packed message has no binary blob');
  const walk = (v: unknown, depth: number): unknown => {
    if (depth > MAX_DEPTH) throw new CohortError('MESSAGE_INVALID', 'message nested too deeply');
    if (Array.isArray(v)) return v.map((item) => walk(item, depth + 1));
    if (typeof v !== 'object' || v === null) return v;
    const ref = (v as { $bin?: unknown }).$bin;
    if (ref !== undefined) {
      if (
        !Array.isArray(ref) ||
        ref.length !== 2 ||
        !ref.every((n) => Number.isSafeInteger(n) && (n as number) >= 0) ||
        (ref[0] as number) + (ref[1] as number) > bytes.byteLength
      ) {
        throw new CohortError('MESSAGE_INVALID', 'binary reference outside the blob');
      }
      const [offset, length] = ref as [number, number];
      return bytes.slice(offset, offset + length);
    }
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(v)) out[key] = walk(item, depth + 1);
    return out;
  };
  return walk(body, 0);
}
