import { z } from 'zod';
import { asBytes } from '../bytes';

/**
 * Wire messages between coordinator and clients, as runtime schemas with their inferred
 * types. The coordinator drives every exchange as a request whose acknowledgement is the
 * response (`*Ins` / `*Res` pairs with a `status`, so failures travel as data).
 */

/** Bumped whenever a message changes incompatibly; checked at registration. */
export const PROTOCOL_VERSION = 2;

const MAX_NAME = 200;
const hex = (bytes: number) =>
  z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `expected ${bytes}-byte lower-case hex`);
const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/**
 * Binary fields: a Buffer (Node) or ArrayBuffer (browsers), from any realm, always returned
 * as a plain Uint8Array view over the same bytes.
 */
export const bytesSchema = z
  .custom<Uint8Array>((value) => asBytes(value) !== null, { message: 'expected binary data' })
  .transform((value) => asBytes(value)!);

/** A SHA-256 hash in hex: model hashes, config hashes. */
export const hashSchema = hex(32);
/** A client id derived from its public key (see shared/identity.ts). */
export const clientIdSchema = hex(16);
export const roundIdSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,120}$/, 'malformed round id');
export const taskSchema = z.string().regex(/^[a-z0-9_-]{1,40}$/, 'malformed task name');

export const weightManifestSchema = z
  .object({
    entries: z
      .array(
        z.object({
          name: z.string().min(1).max(MAX_NAME),
          shape: z
            .array(
              z
                .number()
                .int()
                .positive()
                .max(1 << 24),
            )
            .max(8),
        }),
      )
      .min(1)
      .max(10_000),
    length: z
      .number()
      .int()
      .positive()
      .max(1 << 28),
  })
  .refine(
    (m) => m.entries.reduce((sum, e) => sum + e.shape.reduce((p, d) => p * d, 1), 0) === m.length,
    'manifest length does not equal the sum of its shapes',
  );

/**
 * Sent by the coordinator right after connecting: a nonce the client signs to register, and
 * the coordinator's long-term Ed25519 public key with the id derived from it
 * (`clientIdFromPublicKey`), which every client signature of the run is bound to.
 */
export const challengeSchema = z.object({
  nonce: hex(32),
  coordinatorId: clientIdSchema,
  /** The coordinator's Ed25519 public key, 32 bytes in hex (what `--coordinator-key` pins). */
  coordinatorKey: hex(32),
  /**
   * Whether this coordinator runs secure rounds: lets a client that requires them leave
   * before registering. Advisory only (unsigned): the signed registration answer decides.
   */
  secureAggregation: z.boolean().optional(),
  /**
   * The task and model this coordinator runs, so a client not told `--task` can load the
   * right data. Advisory too: registration checks the model hash.
   */
  task: taskSchema.optional(),
  modelSpecHash: hashSchema.optional(),
  /**
   * Whether registration needs a join proof (see shared/join-proof.ts), so a client without
   * a token can say what is missing. Advisory: the coordinator checks the proof itself.
   */
  joinTokenRequired: z.boolean().optional(),
});
export type Challenge = z.infer<typeof challengeSchema>;

export const registerInsSchema = z.object({
  protocolVersion: z.number().int().positive(),
  publicKey: hex(32),
  /** Ed25519 signature over registrationMessage(nonce, coordinatorId, publicKey). */
  signature: hex(64),
  task: taskSchema,
  modelSpecHash: hashSchema,
  displayName: z.string().max(MAX_NAME).optional(),
  platform: z.enum(['node', 'browser']),
  backend: z.string().max(MAX_NAME),
  /**
   * Example counts are metadata: a client that only joins secure rounds sends 0 for both
   * unless it shares its metrics; plain rounds need them (they bound claimed example counts).
   */
  trainExamples: count,
  testExamples: count,
  /**
   * A fresh random nonce of the client's: the coordinator signs it into its answer
   * ({@link registrationAnswerMessage}), proving it holds the key it announced right now.
   */
  clientNonce: hex(32).optional(),
  /** HMAC proof of the coordinator's join token, bound to this nonce and key (join-proof.ts). */
  joinProof: hex(64).optional(),
  /** The registrar's certificate of `publicKey` (shared/registrar.ts), when it has one. */
  certificate: hex(64).optional(),
});
export type RegisterIns = z.infer<typeof registerInsSchema>;

export const registerResSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('ok'),
    clientId: clientIdSchema,
    experiment: z.string().max(MAX_NAME),
    secureAggregation: z.boolean(),
    /**
     * Ed25519 signature by the coordinator's key over registrationAnswerMessage(...): binds
     * this answer (mode and experiment included) to the client's nonce and key.
     */
    coordinatorSignature: hex(64).optional(),
  }),
  z.object({ status: z.literal('error'), code: z.string().max(60), message: z.string().max(2000) }),
]);
export type RegisterRes = z.infer<typeof registerResSchema>;

export const fitConfigSchema = z.object({
  epochs: z.number().int().min(1).max(1000),
  batchSize: z.number().int().min(1).max(65_536),
  learningRate: finite.refine((v) => v > 0 && v <= 10, 'learning rate must be in (0, 10]'),
  optimizer: z.enum(['sgd', 'adam']),
  proximalMu: finite.refine((v) => v >= 0 && v <= 100, 'proximalMu must be in [0, 100]'),
  seed: z
    .number()
    .int()
    .nonnegative()
    .max(2 ** 32 - 1),
  /** Cap on local training examples (0 = all). */
  maxExamples: count,
});
export type FitConfigMessage = z.infer<typeof fitConfigSchema>;

export const modelPayloadSchema = z.object({
  modelHash: hashSchema,
  manifest: weightManifestSchema,
  weights: bytesSchema,
});
export type ModelPayload = z.infer<typeof modelPayloadSchema>;

export const fitInsSchema = z.object({
  roundId: roundIdSchema,
  round: z.number().int().positive(),
  model: modelPayloadSchema,
  config: fitConfigSchema,
  /** Milliseconds the client has before the coordinator stops waiting. */
  deadlineMs: z.number().int().positive(),
  /** In secure mode the update stays on the client until the MaskedInput phase. */
  secure: z.boolean(),
});
export type FitIns = z.infer<typeof fitInsSchema>;

export const fitResSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('ok'),
    roundId: roundIdSchema,
    modelHash: hashSchema,
    /**
     * Plain mode only (required there). In secure mode the example weight and the train loss
     * travel inside the masked vector, so a secure answer carries neither.
     */
    numExamples: z.number().int().positive().optional(),
    trainLoss: finite.optional(),
    /** Float32 little-endian delta (local - global); plain mode only. */
    update: bytesSchema.optional(),
  }),
  z.object({
    status: z.literal('error'),
    roundId: roundIdSchema,
    code: z.string().max(60),
    message: z.string().max(2000),
  }),
]);
export type FitRes = z.infer<typeof fitResSchema>;

export const evaluateInsSchema = z.object({
  roundId: roundIdSchema,
  model: modelPayloadSchema,
  batchSize: z.number().int().min(1).max(65_536),
  deadlineMs: z.number().int().positive(),
});
export type EvaluateIns = z.infer<typeof evaluateInsSchema>;

export const evaluateResSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('ok'),
    roundId: roundIdSchema,
    numExamples: count,
    loss: finite,
    accuracy: finite.refine((v) => v >= 0 && v <= 1, 'accuracy must be in [0, 1]'),
  }),
  z.object({
    status: z.literal('error'),
    roundId: roundIdSchema,
    code: z.string().max(60),
    message: z.string().max(2000),
  }),
]);
export type EvaluateRes = z.infer<typeof evaluateResSchema>;

/** A round's outcome, broadcast to every connected client after it is persisted. */
export const roundSummarySchema = z.object({
  round: z.number().int().positive(),
  status: z.enum(['completed', 'failed']),
  participants: count,
  dropped: count,
  trainLoss: finite.nullable(),
  testAccuracy: finite.nullable(),
  reason: z.string().max(2000).nullable(),
});
export type RoundSummaryMessage = z.infer<typeof roundSummarySchema>;

export const cancelSchema = z.object({ roundId: roundIdSchema, reason: z.string().max(2000) });
export type CancelMessage = z.infer<typeof cancelSchema>;

export const doneSchema = z.object({
  reason: z.string().max(2000),
  rounds: count,
  finalAccuracy: finite.nullable(),
});
export type DoneMessage = z.infer<typeof doneSchema>;

/**
 * Client progress reports during local training, for coordinator-side progress output. The
 * loss is sent in plain sessions only: a secure session reports the fraction alone.
 */
export const progressSchema = z.object({
  roundId: roundIdSchema,
  fraction: finite.refine((v) => v >= 0 && v <= 1, 'fraction must be in [0, 1]'),
  loss: finite.optional(),
});
export type ProgressMessage = z.infer<typeof progressSchema>;

/** What a client signs to register: binds the nonce to this coordinator and key. */
export function registrationMessage(
  nonce: string,
  coordinatorId: string,
  publicKeyHex: string,
): string {
  return `cohort-register/v${PROTOCOL_VERSION}/${coordinatorId}/${nonce}/${publicKeyHex}`;
}

/**
 * What the coordinator signs in its registration answer: the client's fresh nonce and key,
 * the challenge nonce, and the answer's content, so a pinned client knows that this answer
 * (secure or plain, which experiment) comes from the holder of the pinned key, now.
 */
export function registrationAnswerMessage(answer: {
  coordinatorId: string;
  nonce: string;
  clientNonce: string;
  clientPublicKey: string;
  clientId: string;
  experiment: string;
  secureAggregation: boolean;
}): string {
  return `cohort-register-answer/v${PROTOCOL_VERSION}/${JSON.stringify([
    answer.coordinatorId,
    answer.nonce,
    answer.clientNonce,
    answer.clientPublicKey,
    answer.clientId,
    answer.experiment,
    answer.secureAggregation ? 'secure' : 'plain',
  ])}`;
}
