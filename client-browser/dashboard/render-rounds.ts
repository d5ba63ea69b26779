import type { DashboardRound } from '../../shared/protocol/web';
import { el } from './dom';
import { formatBytes, formatDuration, formatLoss, formatPercent, MISSING } from './format';

/** History entries newest first: by round, then attempt, both descending. */
export function newestFirst(history: readonly DashboardRound[]): DashboardRound[] {
  return [...history].sort((a, b) => b.round - a.round || b.attempt - a.attempt);
}

/** Rounds with a completed attempt (a retried round counts once). */
export function roundsDone(history: readonly DashboardRound[]): number {
  return new Set(history.filter((r) => r.status === 'completed').map((r) => r.round)).size;
}

function cell(column: string, text: string, options: { title?: string; className?: string } = {}) {
  return el('td', { text, attrs: { 'data-col': column }, ...options });
}

/** "5 (2 tabs)": the participants, of which browser tabs. */
function cohortText(round: DashboardRound): string {
  const tabs = round.browserParticipants;
  return tabs > 0
    ? `${round.participants} (${tabs} tab${tabs === 1 ? '' : 's'})`
    : String(round.participants);
}

/** One `<tr data-testid="round-row">`; every cell carries `data-col` for tests and styles. */
export function roundRow(round: DashboardRound): HTMLTableRowElement {
  const failure =
    round.failureCode !== null
      ? `${round.failureCode}${round.failureReason !== null ? `: ${round.failureReason}` : ''}`
      : (round.failureReason ?? '');
  const status = el('span', {
    className: `badge badge-${round.status}`,
    text: round.status,
  });
  const statusCell = el('td', { attrs: { 'data-col': 'status' } }, [status]);
  return el(
    'tr',
    {
      attrs: {
        'data-testid': 'round-row',
        'data-round': String(round.round),
        'data-attempt': String(round.attempt),
        'data-status': round.status,
      },
    },
    [
      cell('round', String(round.round)),
      cell('attempt', String(round.attempt)),
      statusCell,
      cell('aggregation', round.secureAggregation ? 'secure' : 'plain', {
        className: round.secureAggregation ? 'agg-secure' : 'agg-plain',
      }),
      cell('cohort', cohortText(round)),
      cell('dropped', String(round.dropped), { className: round.dropped > 0 ? 'warn' : '' }),
      cell('rejected', String(round.rejected), { className: round.rejected > 0 ? 'warn' : '' }),
      cell('duration', formatDuration(round.durationMs), {
        title: `started ${new Date(round.startedAt).toLocaleString()}`,
      }),
      cell('bytes', formatBytes(round.bytesReceived), { title: `${round.bytesReceived} bytes` }),
      cell('train-loss', formatLoss(round.trainLoss)),
      cell('test-loss', formatLoss(round.testLoss)),
      cell('test-accuracy', formatPercent(round.testAccuracy)),
      cell('failure', failure.length > 0 ? failure : MISSING, {
        className: failure.length > 0 ? 'failure' : 'muted',
        title: failure,
      }),
    ],
  );
}

/** Replaces the rounds table's body with one row per history entry, newest first. */
export function renderRounds(
  body: HTMLElement,
  empty: HTMLElement,
  history: readonly DashboardRound[],
): void {
  body.replaceChildren(...newestFirst(history).map(roundRow));
  empty.hidden = history.length > 0;
}
