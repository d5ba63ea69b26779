import type { SecAggConfig, SecAggPhase } from '../shared/secagg';
import {
  BOX_OVERHEAD,
  packedElementBytes,
  COMPLETE_GRAPH_MAX_CLIENTS,
  MASKED_EXTRA_ELEMENTS,
  MIN_THRESHOLD,
  NONCE_LENGTH,
  SECAGG_DOMAIN,
  SHARE_LENGTH,
  graphParams,
} from '../shared/secagg';

/**
 * The largest answer the coordinator accepts for each request, derived from what an honest
 * answer of that type can weigh. socket.io's maxHttpBufferSize is one bound for every message
 * (sized for a whole plain update); these caps stop a client from making the coordinator hold
 * and walk megabytes where an honest answer is a few hundred bytes (an evaluation, a
 * signature), or a secure-mode fit answer that should carry no update at all.
 *
 * Every size is in the measure of `boundedSize` (connection-guard.ts), which is what the cap
 * is checked with: bytes of binary data, characters of strings and of object keys, 8 per
 * number, boolean or array. Each cap is twice the honest bound plus {@link ANSWER_SLACK_BYTES}
 * and never below {@link ANSWER_FLOOR_BYTES}: proportional, so large models and cohorts are
 * never refused, yet a padded answer is caught long before maxHttpBufferSize.
 */

/**
 * What the fixed fields of any honest ok answer weigh at most, besides its payload: status,
 * round id (at most 128 characters), model hash (64), counts and losses, the key names, and
 * in a packed secagg envelope the `body`/`blob` keys and a few keys, signatures or binary
 * references. The largest such answer, an advertiseKeys envelope, weighs under 400.
 */
export const ANSWER_FIELDS_BYTES = 512;

/**
 * No cap is below this: an error acknowledgement (status, round id <= 128, code <= 60 and a
 * message <= 2000 characters, as clients send them) weighs at most 2,217 and always fits.
 */
export const ANSWER_FLOOR_BYTES = 4096;

/** Added to twice the honest bound, for whatever the bound's arithmetic did not foresee. */
export const ANSWER_SLACK_BYTES = 1024;

/** A packed binary field's reference in the envelope body: `{ $bin: [offset, length] }`. */
export const PACKED_REF_BYTES = '$bin'.length + 8 + 2 * 8;

/** Client ids are 16 bytes in lower-case hex. */
const CLIENT_ID_CHARS = 32;

/** encodeFields (shared/secagg/encoding.ts) prefixes every field with a tag and a length. */
const ENCODED_FIELD_HEADER = 5;

/** Round views are SHA-256-sized hashes (shared/secagg/round-view.ts). */
const VIEW_HASH_BYTES = 32;

/**
 * An honest sealed share bundle's ciphertext (237 bytes): encodeFields of the share-bundle
 * domain label, the view hash, sender and recipient ids, and two Shamir shares, plus the
 * Poly1305 tag. Fixed by the protocol, so every bundle of every client weighs the same.
 */
export const SEALED_BUNDLE_BYTES =
  6 * ENCODED_FIELD_HEADER +
  SECAGG_DOMAIN.shareBundle.length +
  VIEW_HASH_BYTES +
  2 * CLIENT_ID_CHARS +
  2 * SHARE_LENGTH +
  BOX_OVERHEAD;

/** One `{ recipientId, nonce, ciphertext }` entry of a packed shareKeys answer (375). */
export const BUNDLE_ENTRY_BYTES =
  'recipientId'.length +
  CLIENT_ID_CHARS +
  'nonce'.length +
  PACKED_REF_BYTES +
  NONCE_LENGTH +
  'ciphertext'.length +
  PACKED_REF_BYTES +
  SEALED_BUNDLE_BYTES;

/** One `{ ownerId, share }` entry of a packed unmasking answer (105). */
export const SHARE_ENTRY_BYTES =
  'ownerId'.length + CLIENT_ID_CHARS + 'share'.length + PACKED_REF_BYTES + SHARE_LENGTH;

/** Float32 update elements weigh four bytes (masked-vector elements modulusBits / 8). */
const ELEMENT_BYTES = 4;

/**
 * The cap for an answer whose honest form weighs at most `honestBytes`: twice that plus
 * {@link ANSWER_SLACK_BYTES}, and at least {@link ANSWER_FLOOR_BYTES}. Twice, so an honest
 * client is never refused over a miscounted field; a cheating one still cannot send much more.
 */
export function answerCap(honestBytes: number): number {
  return Math.max(ANSWER_FLOOR_BYTES, 2 * honestBytes + ANSWER_SLACK_BYTES);
}

/**
 * Cap on a fit answer for a model of `vectorLength` parameters. Plain: the float32 update
 * (4 bytes a parameter) and the small fields. Secure: the small fields only, since the update
 * travels masked in the secure phases and a secure fit answer must carry none.
 */
export function fitAnswerLimit(vectorLength: number, secure: boolean): number {
  const update = secure ? 0 : ELEMENT_BYTES * vectorLength;
  return answerCap(ANSWER_FIELDS_BYTES + update);
}

/** Cap on an evaluate answer: a round id, an example count, a loss and an accuracy. */
export function evaluateAnswerLimit(): number {
  return answerCap(ANSWER_FIELDS_BYTES);
}

/**
 * The most neighbours a client can have in a secure round of at most `participants` (the
 * advertisement count, which honest clients refuse above config.maxClients). Not simply the
 * degree at `participants`: the graph is complete up to {@link COMPLETE_GRAPH_MAX_CLIENTS}
 * and sparser above, and dropouts at advertiseKeys can shrink a large round into a complete
 * one, so the bound is the larger of the complete graph's 99 and SecAgg+'s degree at
 * `participants` (which only grows with the count).
 */
export function maxSecAggNeighbours(participants: number): number {
  if (participants < MIN_THRESHOLD) return Math.max(0, participants - 1);
  const complete = Math.min(participants, COMPLETE_GRAPH_MAX_CLIENTS) - 1;
  return Math.max(complete, graphParams(participants).neighbours);
}

/**
 * Cap on a secure-aggregation answer in `phase`, from the round's config, as the honest
 * client (shared/secagg/client.ts) builds it, packed (shared/protocol/binary-envelope.ts):
 * - advertiseKeys: two public keys and a signature (fixed);
 * - shareKeys: one sealed bundle per neighbour ({@link BUNDLE_ENTRY_BYTES} each);
 * - maskedInput: the masked vector in its packed encoding, (vectorLength + 2) elements of
 *   config.modulusBits / 8 bytes (shared/secagg/packing.ts), and a signature;
 * - consistencyCheck: one signature (fixed);
 * - unmasking: one share per owner the client holds shares of, itself included, so at most
 *   neighbours + 1 ({@link SHARE_ENTRY_BYTES} each), split over its two lists.
 */
export function secAggAnswerLimit(phase: SecAggPhase, config: SecAggConfig): number {
  const neighbours = maxSecAggNeighbours(config.maxClients);
  switch (phase) {
    case 'advertiseKeys':
    case 'consistencyCheck':
      return answerCap(ANSWER_FIELDS_BYTES);
    case 'shareKeys':
      return answerCap(ANSWER_FIELDS_BYTES + neighbours * BUNDLE_ENTRY_BYTES);
    case 'maskedInput':
      return answerCap(
        ANSWER_FIELDS_BYTES +
          packedElementBytes(config.modulusBits) * (config.vectorLength + MASKED_EXTRA_ELEMENTS),
      );
    case 'unmasking':
      return answerCap(ANSWER_FIELDS_BYTES + (neighbours + 1) * SHARE_ENTRY_BYTES);
  }
}
