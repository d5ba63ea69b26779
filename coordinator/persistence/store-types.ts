import type { ErrorCode } from '../../shared/errors';

/** What the coordinator states about the experiment it is about to run. */
export interface OpenExperimentInput {
  /** Unique name: running again under the same name resumes the experiment. */
  name: string;
  task: string;
  /** The run's options, stored as JSON for people reading the database. */
  config: Record<string, unknown>;
  /** Hash of the model spec: resuming with a different model would load unusable weights. */
  modelSpecHash: string;
}

/** Where a run starts: a fresh experiment, or an existing one to resume. */
export interface OpenedExperiment {
  experimentId: string;
  resumed: boolean;
  /** Highest round number recorded as completed; 0 when none. */
  lastCompletedRound: number;
}

/** A client seen by the coordinator (recorded so participations can name it). */
export interface ClientInput {
  /** Hash of the public key: the only identity a client cannot choose. */
  id: string;
  /** Encoded public key (e.g. hex), kept so an identity can be checked again later. */
  publicKey: string;
  displayName?: string;
  /** Where it runs, as it registered; absent keeps what was recorded (default 'node'). */
  platform?: 'node' | 'browser';
  /** The tfjs backend it registered with. */
  backend?: string;
  seenAt: Date;
}

/** What one client did in a round. */
export interface ParticipationInput {
  /** Must have been recorded with `upsertClient` before the round is recorded. */
  clientId: string;
  status: 'completed' | 'dropped' | 'rejected';
  numExamples: number;
  /** Why a client dropped or was rejected; null for completed participations. */
  errorCode: ErrorCode | null;
}

/** The global model after a completed round, enough to resume from it. */
export interface CheckpointInput {
  weights: Uint8Array;
  strategyState: Uint8Array;
  modelHash: string;
}

/**
 * One finished round as the coordinator reports it, persisted in one transaction.
 *
 * Rules checked by `recordRound` (CohortError INTERNAL when broken, since only a coordinator
 * bug breaks them): a completed round carries a checkpoint and no failure; a failed round
 * carries a failure reason and no checkpoint; counts are non-negative integers; every
 * participation names a client already recorded with `upsertClient`. A round number may be
 * recorded again after a failure (each record is an attempt), but never after it completed.
 * Numbers that are NaN or infinite are stored as null (SQLite cannot store them, and both
 * databases must read back alike).
 */
export interface RoundRecordInput {
  experimentId: string;
  /** 1-based round number. */
  number: number;
  status: 'completed' | 'failed';
  /** Human-readable reason; required for failed rounds, null for completed ones. */
  failureReason: string | null;
  /** Stable code of the failure (e.g. ROUND_ABORTED); null for completed rounds. */
  failureCode: ErrorCode | null;
  /** Whether updates were masked (secure aggregation) in this round. */
  secureAggregation: boolean;
  startedAt: Date;
  finishedAt: Date;
  durationMs: number;
  /** Clients whose contribution is in the aggregate. */
  participants: number;
  /** Selected clients that vanished or missed the deadline. */
  dropped: number;
  /** Bytes of client updates received this round. */
  bytesReceived: number;
  trainLoss: number | null;
  testLoss?: number | null;
  testAccuracy: number | null;
  participations: readonly ParticipationInput[];
  /** Any other per-round numbers, by name (e.g. selected, rejected, federated_accuracy). */
  metrics: Readonly<Record<string, number>>;
  /** Required for completed rounds, null for failed ones. */
  checkpoint: CheckpointInput | null;
}

/** A client admitted to an experiment (see `recordEnrollment`). */
export interface EnrollmentInput {
  experimentId: string;
  /** Must have been recorded with `upsertClient` first. */
  clientId: string;
  /** How it was admitted: 'open', 'join-token', 'allowlist' or 'join-token+allowlist'. */
  method: string;
  at: Date;
}

/** An enrollment read back. */
export interface EnrollmentSummary {
  clientId: string;
  method: string;
  firstEnrolledAt: Date;
  lastEnrolledAt: Date;
}

/** A round the coordinator has started and not yet recorded (see `beginRound`). */
export interface RoundStartInput {
  experimentId: string;
  number: number;
  secureAggregation: boolean;
  startedAt: Date;
}

/**
 * The life of a round attempt in the database: `running` from `beginRound` until
 * `recordRound` makes it `completed` or `failed`; `aborted` when the coordinator ended first
 * (stopped, killed, crashed) and `abortInterruptedRounds` found it still running.
 */
export type RoundStatus = 'running' | 'completed' | 'failed' | 'aborted';

/** A participation read back, as shown in round history. */
export interface ParticipationSummary {
  clientId: string;
  displayName: string | null;
  /** 'node' or 'browser' as the client last registered (rows from before 0.1 read 'node'). */
  platform: string;
  status: 'completed' | 'dropped' | 'rejected';
  numExamples: number;
  /** An ErrorCode; typed as string because rows may come from a newer Cohort version. */
  errorCode: string | null;
}

/** One recorded round attempt read back, with everything needed to show its history. */
export interface RoundSummary {
  number: number;
  /** 1 for the first record of this round number, 2 after one failed attempt, ... */
  attempt: number;
  status: RoundStatus;
  failureReason: string | null;
  /** An ErrorCode; typed as string because rows may come from a newer Cohort version. */
  failureCode: string | null;
  secureAggregation: boolean;
  startedAt: Date;
  finishedAt: Date;
  durationMs: number;
  participants: number;
  dropped: number;
  bytesReceived: number;
  trainLoss: number | null;
  testLoss: number | null;
  testAccuracy: number | null;
  /** Ordered by client id. */
  participations: ParticipationSummary[];
  /** Null values were NaN or infinite when recorded. */
  metrics: Record<string, number | null>;
  /** The checkpoint saved with this round, or null (failed round, or pruned: keepCheckpoints). */
  checkpoint: { modelHash: string; createdAt: Date } | null;
}

/** The newest checkpoint of an experiment, to resume training from it. */
export interface StoredCheckpoint {
  round: number;
  weights: Uint8Array;
  strategyState: Uint8Array;
  modelHash: string;
}

/**
 * Everything the coordinator persists, behind one interface so that it never touches Prisma
 * and tests can inject a store. Every method rejects with CohortError DATABASE_ERROR when the
 * database fails.
 */
export interface CohortStore {
  /**
   * Creates the experiment, or returns the existing one with the same name for resume (its
   * stored config is replaced by the new one). Throws CohortError EXPERIMENT_MISMATCH when the
   * existing one has a different task or model spec hash.
   */
  openExperiment(input: OpenExperimentInput): Promise<OpenedExperiment>;
  /** Records a client, or refreshes its last-seen time and display name. */
  upsertClient(input: ClientInput): Promise<void>;
  /**
   * Records that a client was admitted to an experiment, and how; a later admission of the
   * same client refreshes its last time and method. Never holds a token.
   */
  recordEnrollment(input: EnrollmentInput): Promise<void>;
  /** The experiment's enrollments, ordered by client id. */
  listEnrollments(experimentId: string): Promise<EnrollmentSummary[]>;
  /**
   * Writes a `running` attempt of a round before its first message goes out, so a coordinator
   * that dies mid-round leaves a trace that the next start turns into `aborted`.
   */
  beginRound(input: RoundStartInput): Promise<void>;
  /**
   * Persists one finished round atomically (one transaction): the round row (the `running`
   * attempt `beginRound` wrote, or a new one), its participations, its metrics and (for
   * completed rounds) its checkpoint, then prunes old checkpoints. A completed round is
   * durable when this resolves.
   */
  recordRound(input: RoundRecordInput): Promise<void>;
  /**
   * Marks every `running` attempt of the experiment `aborted` with ROUND_ABORTED and `reason`
   * (at start-up: a previous process ended mid-round; at stop: the round in flight). Returns
   * the round numbers it marked.
   */
  abortInterruptedRounds(experimentId: string, reason: string): Promise<number[]>;
  /** The checkpoint of the highest completed round still kept, or null when there is none. */
  latestCheckpoint(experimentId: string): Promise<StoredCheckpoint | null>;
  /** Every recorded round attempt, ordered by number then attempt. */
  listRounds(experimentId: string): Promise<RoundSummary[]>;
  /** Closes the connections; the store is unusable afterwards. Idempotent. */
  close(): Promise<void>;
}

/** Options of `openStore`. */
export interface OpenStoreOptions {
  /** Receives one line per notable event (migrations applied, warnings). */
  log?: (line: string) => void;
  /**
   * How many checkpoints to keep per experiment (newest first); older ones are deleted when a
   * round is recorded, so a long run's database does not grow with every round. Default 3.
   */
  keepCheckpoints?: number;
  /**
   * SQLite: how long a write waits (and a transaction is retried) while another process holds
   * the database locked, before it fails with DATABASE_ERROR. Default 15 s.
   */
  busyTimeoutMs?: number;
}
