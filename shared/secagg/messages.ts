import { z } from 'zod';
import { isArrayBuffer, isUint8Array } from '../bytes';
import { CohortError } from '../errors';
import type { SecAggConfig } from './params';
import { MAX_VECTOR_LENGTH } from './params';

/**
 * Wire shapes of every secure-aggregation request (coordinator -> client) and response
 * (client -> coordinator), with a runtime validator for each. Types are not validation: both
 * sides run every inbound payload through {@link parseSecAggMessage}, which checks every field
 * (id and hash formats, key/signature/nonce/share lengths, list sizes, unknown keys) and
 * throws MESSAGE_INVALID. Binary fields are Uint8Array on output; on input any Uint8Array
 * (socket.io hands Node Buffers, a subclass) or ArrayBuffer (socket.io in browsers) is
 * accepted and copied into a fresh plain Uint8Array, so later code never aliases a
 * transport's pooled memory. Semantic checks (membership, signatures, sizes relative to the
 * config) live in the client session and the server round.
 */

/** Largest cohort a message may describe; configs are limited far below by the overflow bound. */
export const MAX_PARTICIPANTS = 100_000;
/** Largest sealed share bundle we accept: the real ones are ~330 bytes. */
export const MAX_BUNDLE_CIPHERTEXT = 1024;
/** X25519 and Ed25519 public keys. */
export const KEY_LENGTH = 32;
/** Ed25519 detached signatures. */
export const SIGNATURE_LENGTH = 64;
/** nacl.box nonces. */
export const NONCE_LENGTH = 24;
/** Poly1305 tag nacl.box adds to every ciphertext. */
export const BOX_OVERHEAD = 16;

const SHARE_BYTES = 33;

/** Per-round X25519 public keys a client advertises, with its signature over them. */
export interface AdvertisedKeys {
  clientId: string;
  identityPublicKey: Uint8Array;
  cPublicKey: Uint8Array;
  sPublicKey: Uint8Array;
  signature: Uint8Array;
  /**
   * The registrar's certificate of the identity key (shared/registrar.ts), relayed by the
   * coordinator as the client presented it at registration; clients pinned to a registrar
   * refuse a round with a member that has none.
   */
  certificate?: Uint8Array;
}
/** A sealed share bundle as its sender uploads it. */
export interface OutgoingBundle {
  recipientId: string;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}
/** A sealed share bundle as the coordinator delivers it. */
export interface IncomingBundle {
  senderId: string;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}
/** One revealed Shamir share, naming the client whose secret it is a share of. */
export interface RevealedShare {
  ownerId: string;
  share: Uint8Array;
}
/**
 * A participant's signature (over the survivor lists in the consistency check, or over its
 * sharer list in MaskedInput); checked against the identity key of its signed advertisement.
 */
export interface SurvivorSignature {
  clientId: string;
  signature: Uint8Array;
}

/** Phase 0 request: the round's parameters; identical for every cohort member. */
export interface AdvertiseKeysRequest {
  /** Must be the coordinator the client registered with. */
  coordinatorId: string;
  /** Must be the experiment announced at registration. */
  experiment: string;
  roundId: string;
  modelHash: string;
  config: SecAggConfig;
}
/** Phase 0 response: fresh c (encryption) and s (masking) public keys, signed. */
export interface AdvertiseKeysResponse {
  roundId: string;
  cPublicKey: Uint8Array;
  sPublicKey: Uint8Array;
  signature: Uint8Array;
}
/**
 * Phase 1 request: every signed advertisement (sorted by client id), the same list for every
 * participant; each client verifies all of it and derives the graph and threshold from it.
 */
export interface ShareKeysRequest {
  roundId: string;
  advertisements: AdvertisedKeys[];
}
/** Phase 1 response: one sealed bundle per neighbour. */
export interface ShareKeysResponse {
  roundId: string;
  bundles: OutgoingBundle[];
}
/** Phase 2 request: all who shared keys (sorted) and the bundles sealed to the recipient. */
export interface MaskedInputRequest {
  roundId: string;
  sharers: string[];
  bundles: IncomingBundle[];
}
/**
 * Phase 2 response: the masked vector, (vectorLength + 2) elements of config.modulusBits / 8
 * bytes each, little-endian (shared/secagg/packing.ts), and the client's signature over the
 * sharer list it masked against.
 */
export interface MaskedInputResponse {
  roundId: string;
  maskedInput: Uint8Array;
  signature: Uint8Array;
}
/**
 * Cluster mode: a masked input a gateway process folded into its partial sum, as it tells the
 * leader: the client's signature over the sharer list, without the input itself.
 */
export interface FoldedMaskedInput {
  roundId: string;
  signature: Uint8Array;
}
/** Cluster mode: a gateway's sum of the masked inputs it folded, packed as one masked input. */
export interface PartialMaskedSum {
  roundId: string;
  contributors: string[];
  sum: Uint8Array;
}
/** Phase 3 request: the survivors (sorted) whose masked input the coordinator accepted. */
export interface ConsistencyCheckRequest {
  roundId: string;
  survivors: string[];
}
/** Phase 3 response: the client's signature over that list. */
export interface ConsistencyCheckResponse {
  roundId: string;
  signature: Uint8Array;
}
/**
 * Phase 4 request: survivors, dropped (shared keys but sent no input), the survivors'
 * consistency signatures, and the MaskedInput signatures of the recipient's surviving
 * neighbours (what they masked against).
 */
export interface UnmaskingRequest {
  roundId: string;
  survivors: string[];
  dropped: string[];
  signatures: SurvivorSignature[];
  inputSignatures: SurvivorSignature[];
}
/** Phase 4 response: self-mask shares of survivors, secret-key shares of the dropped. */
export interface UnmaskingResponse {
  roundId: string;
  selfMaskShares: RevealedShare[];
  secretKeyShares: RevealedShare[];
}

function binaryLength(v: Uint8Array | ArrayBuffer): number {
  return v.byteLength;
}

function binary(min: number, max = min) {
  const what = min === max ? `${min} bytes` : `${min}..${max} bytes`;
  return z
    .custom<Uint8Array | ArrayBuffer>(
      (v) =>
        (isUint8Array(v) || isArrayBuffer(v)) && binaryLength(v) >= min && binaryLength(v) <= max,
      { message: `expected binary of ${what}` },
    )
    .transform((v): Uint8Array =>
      isArrayBuffer(v) ? new Uint8Array(v.slice(0)) : new Uint8Array(v),
    );
}

const clientId = z.string().regex(/^[0-9a-f]{32}$/, 'client ids are 32 lower-case hex characters');
const hashHex = z
  .string()
  .regex(/^[0-9a-f]{16,128}$/, 'hashes are 16-128 lower-case hex characters');
const roundId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, 'round ids are printable ASCII without spaces');
const idList = z.array(clientId).max(MAX_PARTICIPANTS);
const key = binary(KEY_LENGTH);
const signature = binary(SIGNATURE_LENGTH);
const nonce = binary(NONCE_LENGTH);
const ciphertext = binary(BOX_OVERHEAD + 1, MAX_BUNDLE_CIPHERTEXT);
const share = binary(SHARE_BYTES);

const configSchema = z.strictObject({
  modulusBits: z.number().int(),
  vectorLength: z.number().int().min(1).max(MAX_VECTOR_LENGTH),
  clipRange: z.number().positive(),
  scale: z.number().positive(),
  weightCap: z.number().int().min(1),
  maxClients: z.number().int().min(1).max(MAX_PARTICIPANTS),
});

const advertisedKeys = z.strictObject({
  clientId,
  identityPublicKey: key,
  cPublicKey: key,
  sPublicKey: key,
  signature,
  certificate: signature.optional(),
});
const revealedShare = z.strictObject({ ownerId: clientId, share });
const signedBy = z.strictObject({ clientId, signature });
const experimentName = z.string().min(1).max(200);

/** Validators of every secure-aggregation message, by message name. */
export const secAggSchemas = {
  advertiseKeysRequest: z.strictObject({
    coordinatorId: clientId,
    experiment: experimentName,
    roundId,
    modelHash: hashHex,
    config: configSchema,
  }),
  advertiseKeysResponse: z.strictObject({
    roundId,
    cPublicKey: key,
    sPublicKey: key,
    signature,
  }),
  shareKeysRequest: z.strictObject({
    roundId,
    advertisements: z.array(advertisedKeys).max(MAX_PARTICIPANTS),
  }),
  shareKeysResponse: z.strictObject({
    roundId,
    bundles: z
      .array(z.strictObject({ recipientId: clientId, nonce, ciphertext }))
      .max(MAX_PARTICIPANTS),
  }),
  maskedInputRequest: z.strictObject({
    roundId,
    sharers: idList,
    bundles: z
      .array(z.strictObject({ senderId: clientId, nonce, ciphertext }))
      .max(MAX_PARTICIPANTS),
  }),
  maskedInputResponse: z.strictObject({
    roundId,
    // At least 3 elements of 16 bits; the exact length is checked against the config.
    maskedInput: binary(6, 4 * (MAX_VECTOR_LENGTH + 2)),
    signature,
  }),
  foldedMaskedInput: z.strictObject({ roundId, signature }),
  partialMaskedSum: z.strictObject({
    roundId,
    contributors: idList,
    // Empty when the gateway folded nothing; else the length is checked against the config.
    sum: binary(0, 4 * (MAX_VECTOR_LENGTH + 2)),
  }),
  consistencyCheckRequest: z.strictObject({ roundId, survivors: idList }),
  consistencyCheckResponse: z.strictObject({ roundId, signature }),
  unmaskingRequest: z.strictObject({
    roundId,
    survivors: idList,
    dropped: idList,
    signatures: z.array(signedBy).max(MAX_PARTICIPANTS),
    inputSignatures: z.array(signedBy).max(MAX_PARTICIPANTS),
  }),
  unmaskingResponse: z.strictObject({
    roundId,
    selfMaskShares: z.array(revealedShare).max(MAX_PARTICIPANTS),
    secretKeyShares: z.array(revealedShare).max(MAX_PARTICIPANTS),
  }),
} satisfies Record<string, z.ZodType>;

/** Name of a secure-aggregation message. */
export type SecAggMessageName = keyof typeof secAggSchemas;

/** Maps each message name to its TypeScript shape. */
export interface SecAggMessages {
  advertiseKeysRequest: AdvertiseKeysRequest;
  advertiseKeysResponse: AdvertiseKeysResponse;
  shareKeysRequest: ShareKeysRequest;
  shareKeysResponse: ShareKeysResponse;
  maskedInputRequest: MaskedInputRequest;
  maskedInputResponse: MaskedInputResponse;
  foldedMaskedInput: FoldedMaskedInput;
  partialMaskedSum: PartialMaskedSum;
  consistencyCheckRequest: ConsistencyCheckRequest;
  consistencyCheckResponse: ConsistencyCheckResponse;
  unmaskingRequest: UnmaskingRequest;
  unmaskingResponse: UnmaskingResponse;
}

// Compile-time proof that each validator produces exactly the documented shape.
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type SchemaMatches = {
  [K in SecAggMessageName]: Exact<z.output<(typeof secAggSchemas)[K]>, SecAggMessages[K]>;
};
const schemasMatch: SchemaMatches = {
  advertiseKeysRequest: true,
  advertiseKeysResponse: true,
  shareKeysRequest: true,
  shareKeysResponse: true,
  maskedInputRequest: true,
  maskedInputResponse: true,
  foldedMaskedInput: true,
  partialMaskedSum: true,
  consistencyCheckRequest: true,
  consistencyCheckResponse: true,
  unmaskingRequest: true,
  unmaskingResponse: true,
};
void schemasMatch;

/**
 * Validates an untrusted payload as message `name` and returns a clean copy; throws
 * CohortError MESSAGE_INVALID naming the first offending fields.
 */
export function parseSecAggMessage<K extends SecAggMessageName>(
  name: K,
  payload: unknown,
): SecAggMessages[K] {
  const result = secAggSchemas[name].safeParse(payload);
  if (!result.success) {
    const issues = result.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new CohortError('MESSAGE_INVALID', `invalid ${name}: ${issues}`);
  }
  return result.data as SecAggMessages[K];
}
