/**
 * Stable error codes. They travel over the wire, land in the database and are listed in the
 * README, so a code is never renamed or reused once published: add new ones at the end of
 * their group instead.
 */
export const ERROR_CODES = {
  // Configuration and start-up (refused before anything runs).
  CONFIG_INVALID: 'Invalid option value or conflicting options.',
  CONFIG_UNSAFE: 'Configuration could overflow the secure-aggregation modulus or weaken it.',
  DATA_NOT_FOUND: 'Dataset path missing or in an unknown format.',
  DATA_INVALID: 'Dataset file is corrupt or inconsistent.',
  DATA_DOWNLOAD_FAILED: 'Dataset download failed (offline?): pass --data with local files.',
  BACKEND_UNAVAILABLE: 'Requested TensorFlow.js backend could not be loaded.',
  DATABASE_ERROR: 'Database unreachable or migration failed.',
  EXPERIMENT_MISMATCH: 'Existing experiment in the database has a different configuration.',
  // Messages from the network.
  MESSAGE_INVALID: 'A message failed validation.',
  AUTH_FAILED: 'Client identity could not be verified.',
  TASK_MISMATCH: 'Client and coordinator run different tasks or models.',
  PROTOCOL_VERSION: 'Client and coordinator speak different protocol versions.',
  IDENTITY_IN_USE: 'Another live connection holds this client identity: give each client its own.',
  TLS_UNTRUSTED:
    "The coordinator's TLS certificate is not trusted: pass --ca with its CA certificate.",
  RATE_LIMITED: 'Too many connections from one address, or events on one connection.',
  JOIN_REFUSED:
    'The coordinator admits only enrolled clients: its join token, or a key on its allowlist.',
  ACCESS_REFUSED:
    'A dashboard read or an admin action lacked the right token (--dashboard-token, --admin-token).',
  INSECURE_CONTEXT:
    'The browser page was served over plain HTTP from a non-local address: use HTTPS or localhost.',
  NOT_FOUND: 'No such page or resource on the coordinator.',
  COORDINATOR_UNREACHABLE: 'The browser page could not reach the coordinator that served it.',
  // Updates.
  UPDATE_STALE: 'Update is for a round that is no longer open.',
  UPDATE_DUPLICATE: 'A second update from the same client in one round.',
  UPDATE_SHAPE: 'Update has the wrong size or manifest for the model.',
  UPDATE_NON_FINITE: 'Update contains NaN or Infinity.',
  UPDATE_NOT_SELECTED: 'Client was not selected for this round.',
  MODEL_HASH_MISMATCH: 'Model hash does not match the announced model.',
  // Rounds.
  ROUND_DEADLINE: 'Client missed the round deadline.',
  ROUND_ABORTED: 'Round aborted: too few clients completed it.',
  CLIENT_DROPPED: 'Client disconnected during the round.',
  TRAINING_FAILED: 'Local training failed on the client.',
  // Secure aggregation.
  SECAGG_BELOW_THRESHOLD: 'Fewer than t clients survived a secure-aggregation phase.',
  SECAGG_SIGNATURE: 'A signature did not verify.',
  SECAGG_INCONSISTENT: 'The coordinator sent inconsistent participant lists.',
  SECAGG_DECRYPT: 'A sealed share bundle failed to decrypt or authenticate.',
  SECAGG_REPLAY: 'A phase was requested twice or out of order.',
  SECAGG_LATE: 'A message arrived after its sender was declared dropped.',
  SECAGG_RECONSTRUCT: 'Shares did not reconstruct a valid secret: a client sent bad shares.',
  SECAGG_REQUIRED:
    'Secure aggregation is required by this client; the coordinator offered a plain round.',
  METRICS_PRIVATE: 'The client does not share evaluation metrics in secure rounds.',
  // Cluster mode.
  CLUSTER_UNAVAILABLE:
    'Cluster mode: Redis, or the coordinator process holding a client, could not be reached.',
  LEADERSHIP_LOST:
    'Cluster mode: this process lost the PostgreSQL leader lock and stopped leading.',
  INTERNAL: 'Unexpected internal error.',
} as const;

/** One of the published error codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The only error type Cohort throws on purpose: a stable `code` for machines plus a `reason`
 * for people, so callers branch on codes and never parse messages. `message` is the one-line
 * form `CODE: reason` that logs and the CLI print; whatever relays an error (over the wire,
 * or wrapped in another) passes `code` and `reason` on, so a code is never pasted twice.
 */
export class CohortError extends Error {
  readonly reason: string;

  constructor(
    readonly code: ErrorCode,
    reason: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(`${code}: ${reason}`);
    this.name = 'CohortError';
    this.reason = reason;
  }
}

/** True when `err` is a CohortError, optionally with a specific code. */
export function isCohortError(err: unknown, code?: ErrorCode): err is CohortError {
  return err instanceof CohortError && (code === undefined || err.code === code);
}

/** A code a peer sent back, if it is a published one; anything else is not trusted. */
export function parseErrorCode(code: string): ErrorCode | null {
  return Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : null;
}

/** What went wrong, without a code: a CohortError's reason, another error's message. */
export function reasonOf(error: unknown): string {
  if (error instanceof CohortError) return error.reason;
  return error instanceof Error ? error.message : String(error);
}

/** The human part of any thrown value, for log lines (no "CohortError:" prefix, no stack). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
