import { z } from 'zod';
import type { ParticipationSummary, RoundSummary } from './persistence/store-types';

/**
 * One line of the round history written by `--json` and returned by `simulate()`: the
 * numbers a person or a test needs to judge a run, nothing that reveals one client's update.
 */
export interface RoundHistoryEntry {
  round: number;
  status: 'completed' | 'failed';
  /** Clients whose contribution is in the aggregate. */
  participants: number;
  /** Selected clients that vanished or missed the deadline. */
  dropped: number;
  /** Selected clients whose answer was refused (malformed, stale, wrong shape...). */
  rejected: number;
  selected: number;
  trainLoss: number | null;
  testLoss: number | null;
  testAccuracy: number | null;
  /** Where testAccuracy came from. */
  evaluation: 'centralized' | 'federated' | 'none';
  federatedAccuracy: number | null;
  durationMs: number;
  bytesReceived: number;
  secureAggregation: 'on' | 'off';
  failureReason: string | null;
}

/** The whole run: what `--json` writes. */
export interface RunHistory {
  experiment: string;
  task: string;
  startedAt: string;
  finishedAt: string | null;
  resumedFromRound: number;
  rounds: RoundHistoryEntry[];
  modelExportedTo: string | null;
  /** Where `--json` writes this history (absolute), or null. */
  historyFile: string | null;
  database: string;
}

/**
 * A round as the database records it, as a history line: what a cluster process that only
 * followed reports at the end (the leader's rounds, read back from the shared database).
 */
export function historyEntryOf(summary: RoundSummary): RoundHistoryEntry {
  const count = (status: ParticipationSummary['status']) =>
    summary.participations.filter((p) => p.status === status).length;
  const federated = summary.metrics.federated_accuracy;
  return {
    round: summary.number,
    status: summary.status === 'completed' ? 'completed' : 'failed',
    participants: summary.participants,
    dropped: summary.dropped,
    rejected: count('rejected'),
    selected: summary.participations.length,
    trainLoss: summary.trainLoss,
    testLoss: summary.testLoss,
    testAccuracy: summary.testAccuracy,
    evaluation:
      summary.testAccuracy === null ? 'none' : federated != null ? 'federated' : 'centralized',
    federatedAccuracy: federated ?? null,
    durationMs: summary.durationMs,
    bytesReceived: summary.bytesReceived,
    secureAggregation: summary.secureAggregation ? 'on' : 'off',
    failureReason:
      summary.failureCode !== null
        ? `${summary.failureCode}: ${summary.failureReason ?? ''}`
        : null,
  };
}

const count = z.number().int().min(0);
const metric = z.number().nullable();

/**
 * A history line as another process of a cluster relays it (the leader tells every process
 * each round it ends, for their dashboards, /metrics and logs): checked field by field.
 */
export const roundHistoryEntrySchema: z.ZodType<RoundHistoryEntry> = z.strictObject({
  round: z.number().int().positive(),
  status: z.enum(['completed', 'failed']),
  participants: count,
  dropped: count,
  rejected: count,
  selected: count,
  trainLoss: metric,
  testLoss: metric,
  testAccuracy: metric,
  evaluation: z.enum(['centralized', 'federated', 'none']),
  federatedAccuracy: metric,
  durationMs: z.number().min(0),
  bytesReceived: z.number().min(0),
  secureAggregation: z.enum(['on', 'off']),
  failureReason: z.string().max(4000).nullable(),
});
