import nacl from 'tweetnacl';
import { toHex, utf8Bytes } from './bytes';

/**
 * Proof that a registering client holds the coordinator's join token, without sending it: an
 * HMAC-SHA-512 keyed with the token over this connection's challenge nonce, the coordinator
 * id and the client's public key. A captured proof is useless on another connection (fresh
 * nonce), for another coordinator or for another key, and the token never crosses the wire,
 * so it stays secret even over an unencrypted socket. Built on tweetnacl's SHA-512 so Node
 * and the browser compute it alike, synchronously.
 */

/** SHA-512's block size in bytes (RFC 2104's B). */
const BLOCK_BYTES = 128;

/** What a join proof binds together. */
export interface JoinProofContext {
  /** The challenge nonce of this connection (hex). */
  nonce: string;
  coordinatorId: string;
  /** The client's Ed25519 public key (hex). */
  publicKey: string;
}

/** HMAC-SHA-512 (RFC 2104) of `message` under `key`. */
export function hmacSha512(key: Uint8Array, message: Uint8Array): Uint8Array {
  const block = new Uint8Array(BLOCK_BYTES);
  block.set(key.length > BLOCK_BYTES ? nacl.hash(key) : key);
  const inner = new Uint8Array(BLOCK_BYTES + message.length);
  const outer = new Uint8Array(BLOCK_BYTES + 64);
  for (let i = 0; i < BLOCK_BYTES; i++) {
    inner[i] = block[i]! ^ 0x36;
    outer[i] = block[i]! ^ 0x5c;
  }
  inner.set(message, BLOCK_BYTES);
  outer.set(nacl.hash(inner), BLOCK_BYTES);
  return nacl.hash(outer);
}

/** The bytes a join proof authenticates; the domain tag keeps it from meaning anything else. */
function joinProofMessage(context: JoinProofContext): Uint8Array {
  return utf8Bytes(
    `cohort-join-v1\n${context.nonce}\n${context.coordinatorId}\n${context.publicKey}`,
  );
}

/** The client's proof (hex, 64 bytes) that it holds `token`. */
export function joinProof(token: string, context: JoinProofContext): string {
  return toHex(hmacSha512(utf8Bytes(token), joinProofMessage(context)));
}

/** Whether `proof` is the proof of `token` for `context`, compared in constant time. */
export function verifyJoinProof(token: string, context: JoinProofContext, proof: string): boolean {
  const expected = utf8Bytes(joinProof(token, context));
  const given = utf8Bytes(proof.toLowerCase());
  return given.length === expected.length && nacl.verify(given, expected);
}
