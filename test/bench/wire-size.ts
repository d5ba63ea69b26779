/**
 * Bytes a message costs on the wire, estimated the way socket.io encodes an acknowledgement
 * that carries binary fields: each Uint8Array leaves the JSON as a placeholder
 * (`{"_placeholder":true,"num":N}`) and travels as its own attachment of exactly its
 * byteLength; everything else is the JSON text. A bandwidth figure built on this is
 * reproducible and transport-realistic without a socket; it leaves out the packet prefix
 * (a few bytes), WebSocket frame headers (2-10 bytes per frame) and TCP/TLS overhead.
 */

/** The parts of one encoded message, so tables can tell payload from envelope. */
export interface WireSize {
  /** Sum of the byteLength of every binary attachment. */
  binaryBytes: number;
  /** Length of the JSON text with the binary fields replaced by placeholders. */
  jsonBytes: number;
  /** binaryBytes + jsonBytes. */
  totalBytes: number;
}

/** Estimates the socket.io wire size of `message` (see the module comment). */
export function wireSize(message: unknown): WireSize {
  let binaryBytes = 0;
  let attachments = 0;
  // The holder's own property, not `value`: a Node Buffer's toJSON has already run on `value`.
  const text = JSON.stringify(message, function (this: unknown, key: string, value: unknown) {
    const original = (this as Record<string, unknown>)[key];
    if (original instanceof Uint8Array) {
      binaryBytes += original.byteLength;
      return { _placeholder: true, num: attachments++ };
    }
    return value;
  });
  const jsonBytes = Buffer.byteLength(text ?? '', 'utf8');
  return { binaryBytes, jsonBytes, totalBytes: binaryBytes + jsonBytes };
}
