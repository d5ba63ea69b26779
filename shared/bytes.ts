import { CohortError } from './errors';

/**
 * Byte helpers every part of the core shares: hex (how keys and hashes travel and are
 * stored), UTF-8 (what gets signed and hashed), and binary checks that work across realms
 * (jest sandboxes, iframes) and with what socket.io delivers (Buffer in Node, ArrayBuffer in
 * browsers), where `instanceof Uint8Array` is not reliable.
 */

/** Lower-case hex encoding. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += bytes[i]!.toString(16).padStart(2, '0');
  return out;
}

/** Decodes lower- or upper-case hex; MESSAGE_INVALID on odd length or non-hex characters. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new CohortError('MESSAGE_INVALID', 'malformed hex string');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** UTF-8 bytes of a string (TextEncoder exists in Node and every browser). */
export function utf8Bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** True for any Uint8Array (Node Buffers included), from any realm. */
export function isUint8Array(value: unknown): value is Uint8Array {
  return (
    ArrayBuffer.isView(value) &&
    (value as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === 'Uint8Array'
  );
}

/** True for an ArrayBuffer from any realm. */
export function isArrayBuffer(value: unknown): value is ArrayBuffer {
  return Object.prototype.toString.call(value) === '[object ArrayBuffer]';
}

/**
 * A plain Uint8Array view over binary input (Buffer or ArrayBuffer), or null when the value
 * is not binary. Views share memory: copy before keeping data past the message handler.
 */
export function asBytes(value: unknown): Uint8Array | null {
  if (isUint8Array(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (isArrayBuffer(value)) return new Uint8Array(value);
  return null;
}
