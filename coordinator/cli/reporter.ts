/* eslint-disable no-console -- the CLI's job is to print */
import type { Coordinator } from '../coordinator';
import type { RoundHistoryEntry, RunHistory } from '../history';

/** How the CLI prints; JSON lines for machines, a table for people. */
export interface ReporterOptions {
  quiet?: boolean;
}

const pct = (v: number | null) => (v === null ? '   -   ' : `${(v * 100).toFixed(2).padStart(6)}%`);
const num = (v: number | null) => (v === null ? '   -   ' : v.toFixed(4).padStart(7));

/** A one-line, fixed-width summary of a round, so a run reads as a table. */
export function formatRound(entry: RoundHistoryEntry): string {
  const secs = (entry.durationMs / 1000).toFixed(1).padStart(6);
  const kib = (entry.bytesReceived / 1024).toFixed(0).padStart(7);
  const status = entry.status === 'completed' ? '' : `  FAILED: ${entry.failureReason ?? ''}`;
  return (
    `round ${String(entry.round).padStart(3)} | clients ${String(entry.participants).padStart(3)}` +
    `/${String(entry.selected).padEnd(3)} dropped ${String(entry.dropped).padStart(2)}` +
    ` | train loss ${num(entry.trainLoss)} | test acc ${pct(entry.testAccuracy)}` +
    ` | ${secs} s | ${kib} KiB in | secagg ${entry.secureAggregation}${status}`
  );
}

/** The closing lines after a run. */
export function formatSummary(history: RunHistory): string[] {
  const completed = history.rounds.filter((r) => r.status === 'completed');
  const accs = completed.map((r) => r.testAccuracy).filter((a): a is number => a !== null);
  const totalMs = history.rounds.reduce((s, r) => s + r.durationMs, 0);
  return [
    `experiment "${history.experiment}" (${history.task}): ${completed.length}/${history.rounds.length} rounds completed` +
      (history.resumedFromRound > 0 ? ` (resumed after round ${history.resumedFromRound})` : '') +
      ` in ${(totalMs / 1000).toFixed(1)} s`,
    accs.length > 0
      ? `test accuracy: first ${pct(accs[0]!).trim()}, final ${pct(accs[accs.length - 1]!).trim()}`
      : 'test accuracy: not measured',
    `database: ${history.database}`,
    `model: ${history.modelExportedTo ?? 'not exported (use --export DIR)'}`,
    `history: ${history.historyFile ?? 'not written (use --json FILE)'}`,
  ];
}

/** Prints coordinator progress: joins, waits, per-client training progress, one line per round. */
export function attachReporter(coordinator: Coordinator, options: ReporterOptions = {}): void {
  const out = (line: string) => {
    if (!options.quiet) console.log(line);
  };
  const tty = process.stdout.isTTY === true;
  const progress = new Map<string, number>();
  let lastShown = 0;
  let finished = false;
  coordinator.on('listening', ({ url }) => {
    out(`coordinator listening on ${url}`);
    out(`dashboard: ${url}/  ·  browsers join at ${coordinator.joinUrl}`);
  });
  coordinator.on('status', ({ status, reason }) => {
    if (status === 'pausing' || status === 'paused' || reason.includes('admin')) {
      out(`run ${status} (${reason})`);
    }
  });
  coordinator.on('following', ({ nodeId, peers }) =>
    out(
      `cluster: process ${nodeId.slice(0, 8)} joined (${peers} other process${peers === 1 ? '' : 'es'} heard so far); ` +
        'it serves its own clients and leads if the leader goes',
    ),
  );
  coordinator.on('leading', ({ nodeId, resumeAfterRound }) =>
    out(
      `cluster: process ${nodeId.slice(0, 8)} leads the rounds from here (after round ${resumeAfterRound})`,
    ),
  );
  coordinator.on('resumed', ({ round }) =>
    out(`resuming: rounds 1..${round} are already completed in the database`),
  );
  coordinator.on('client-joined', (c) =>
    finished
      ? undefined
      : out(
          `client ${c.clientId.slice(0, 8)} joined (${c.platform}, ${c.backend}); ${c.connected} connected`,
        ),
  );
  coordinator.on('client-left', (c) =>
    finished
      ? undefined
      : out(`client ${c.clientId.slice(0, 8)} left (${c.reason}); ${c.connected} connected`),
  );
  coordinator.on('waiting', (w) =>
    out(`round ${w.round}: waiting for clients (${w.connected}/${w.needed})`),
  );
  coordinator.on('round-start', (r) => {
    progress.clear();
    lastShown = 0;
    out(`round ${r.round}: training on ${r.selected} clients (target ${r.target})`);
  });
  coordinator.on('client-progress', ({ round, clientId, fraction }) => {
    progress.set(clientId, fraction);
    const mean = [...progress.values()].reduce((s, f) => s + f, 0) / Math.max(1, progress.size);
    const step = Math.floor(mean * 4);
    if (tty && !options.quiet)
      process.stdout.write(`\rround ${round}: ${(mean * 100).toFixed(0).padStart(3)}% trained`);
    else if (step > lastShown && step < 4) {
      lastShown = step;
      out(`round ${round}: ${step * 25}% trained`);
    }
  });
  coordinator.on('round-end', (entry) => {
    if (tty && !options.quiet) process.stdout.write('\r\x1b[K');
    out(formatRound(entry));
  });
  coordinator.on('finished', (history) => {
    finished = true;
    formatSummary(history).forEach(out);
  });
}
