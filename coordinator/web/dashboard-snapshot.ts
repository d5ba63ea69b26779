import type { DashboardClient, DashboardRound } from '../../shared/protocol/web';
import type { CoordinatorConfig } from '../config';
import { CONFIG_KEYS } from '../config';
import type { OptionSpec } from '../options';
import { OPTIONS, ROUND_OPTIONS } from '../options';
import type { RoundSummary } from '../persistence/store';

/** Where a path option points is the operator's business, not a dashboard viewer's. */
const PATH_PLACEHOLDERS = new Set(['<dir>', '<file>', '<url>']);

/**
 * The options a dashboard shows: the round options of the options table that are config
 * fields, plus how cohorts are chosen; never a secret, a path to a secret or any file
 * system location (tokens, identity and TLS files, database URL, data folders, exports).
 */
export const PUBLIC_CONFIG_KEYS: readonly (keyof CoordinatorConfig)[] = [
  ...ROUND_OPTIONS.filter(
    (name) =>
      CONFIG_KEYS.includes(name) &&
      !PATH_PLACEHOLDERS.has((OPTIONS[name] as OptionSpec).placeholder ?? ''),
  ),
  'minClients',
  'clientsPerRound',
  'fraction',
  'overSelection',
] as (keyof CoordinatorConfig)[];

/** The public part of a config, as the snapshot carries it (absent options as null). */
export function publicConfig(
  config: CoordinatorConfig,
): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const key of PUBLIC_CONFIG_KEYS) {
    const value: unknown = config[key];
    out[key] =
      typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
        ? value
        : null;
  }
  return out;
}

/** A stored round attempt as the dashboard's table shows it. */
export function dashboardRound(summary: RoundSummary): DashboardRound {
  const completed = summary.participations.filter((p) => p.status === 'completed');
  return {
    round: summary.number,
    attempt: summary.attempt,
    status: summary.status,
    secureAggregation: summary.secureAggregation,
    startedAt: summary.startedAt.toISOString(),
    durationMs: summary.durationMs,
    participants: summary.participants,
    dropped: summary.dropped,
    rejected: summary.participations.filter((p) => p.status === 'rejected').length,
    browserParticipants: completed.filter((p) => p.platform === 'browser').length,
    bytesReceived: summary.bytesReceived,
    trainLoss: summary.trainLoss,
    testLoss: summary.testLoss,
    testAccuracy: summary.testAccuracy,
    failureCode: summary.failureCode,
    failureReason: summary.failureReason,
  };
}

/** Completed participations per client id over the stored history. */
export function roundsTakenPart(history: readonly RoundSummary[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const round of history) {
    for (const p of round.participations) {
      if (p.status === 'completed') counts.set(p.clientId, (counts.get(p.clientId) ?? 0) + 1);
    }
  }
  return counts;
}

/** A live client, for the clients table. */
export interface LiveClient {
  id: string;
  displayName: string | null;
  platform: 'node' | 'browser';
  backend: string;
  connectedAt: Date;
  lastSeenAt: Date;
}

/** The clients table: live clients, most recently connected first. */
export function dashboardClients(
  live: readonly LiveClient[],
  taken: ReadonlyMap<string, number>,
): DashboardClient[] {
  return [...live]
    .sort((a, b) => b.connectedAt.getTime() - a.connectedAt.getTime())
    .map((c) => ({
      clientId: c.id,
      displayName: c.displayName,
      platform: c.platform,
      backend: c.backend,
      connectedAt: c.connectedAt.toISOString(),
      lastSeenAt: c.lastSeenAt.toISOString(),
      rounds: taken.get(c.id) ?? 0,
    }));
}
