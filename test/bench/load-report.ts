/**
 * Turning the load bench's measurements into its table, its correctness check, the "where a
 * single process tops out" verdict and the notes that explain how to read them. Kept apart
 * from the suite so the driving code stays short.
 */
import type { RoundHistoryEntry } from '../../coordinator/history';
import {
  DEFAULT_WEIGHT_CAP,
  MAX_MASKED_LOSS,
  chooseSecAggParams,
  graphParams,
} from '../../shared/secagg';
import type { SecAggModulusBits } from '../../shared/secagg';
import type { BenchColumn, BenchRow } from './bench-types';
import type { GrowResult } from './load-clients';
import type { CoordinatorStats, LoopDelay, RoundReport } from './load-ipc';
import type { FitRecord } from './load-trainer';

/** What a run measures: the steps of connected clients and the round size. */
export interface LoadPlan {
  steps: number[];
  roundSize: number;
  /** Registrations in flight at once while the fleet grows. */
  concurrency: number;
  /** How long one client may take to register. */
  registerWaitMs: number;
  /** How long one round may take (and each coordinator deadline in it). */
  roundWaitMs: number;
}

/** The secure mean train loss against the plain weighted mean of what the clients trained. */
export interface LossCheck {
  label: string;
  ok: boolean | null;
  expected: number | null;
  actual: number | null;
  tolerance: number | null;
}

/**
 * How a step can fail: not every client registered, the round failed (recorded as such), no
 * round ended in time, the coordinator process died, or anything else went wrong.
 */
export type StepFailure = 'connect' | 'round' | 'timeout' | 'coordinator exited' | 'error';

/** Everything measured at one step; the fields after `error` stay null once something failed. */
export interface StepMeasurement {
  /** Clients wanted at this step. */
  target: number;
  /** Clients that registered during this step (on top of the previous steps'). */
  added: number;
  grow: GrowResult | null;
  /** The coordinator while the fleet grew to `target`. */
  connect: CoordinatorStats | null;
  round: RoundReport | null;
  /** The coordinator during the round. */
  roundStats: CoordinatorStats | null;
  /** The bench process (the clients) during the round. */
  clientLoop: LoopDelay | null;
  /** The coordinator over the whole step (growing, then the round). */
  step: CoordinatorStats | null;
  check: LossCheck | null;
  /** RSS of the bench process (all the clients) at the end of the step. */
  clientsRssMB: number | null;
  /** What kind of failure ended the run at this step (null: the step completed). */
  failure: StepFailure | null;
  /** Why the step failed, in words. */
  error: string | null;
}

/**
 * Where the coordinator's event loop is taken as saturated: a p99 delay of a second means
 * every socket (heartbeats, registrations, answers) waits that long for its turn.
 */
export const SATURATED_LOOP_P99_MS = 1_000;

/** The verdict on how far one coordinator process went. */
export interface TopsOut {
  /** Largest step whose round completed with the loop below saturation (null: none). */
  largestOk: number | null;
  /** The first step that failed or saturated, and why (null: none did). */
  failedAt: number | null;
  reason: string | null;
  /** Coordinator CPU per registration over the steps that completed. */
  registerCpuMs: number | null;
  /** Heap (after GC) and RSS each connected client costs, first to last completed step. */
  heapPerClientKB: number | null;
  rssPerClientKB: number | null;
  /** Clients at which the coordinator's heap would reach V8's limit, extrapolated linearly. */
  heapLimitClients: number | null;
  /** The verdict in one line (printed, and the last note). */
  line: string;
}

/** The table's columns. */
export const LOAD_COLUMNS: BenchColumn[] = [
  { key: 'clients', label: 'clients' },
  { key: 'connectS', label: 'connect s' },
  { key: 'registerMs', label: 'CPU/reg. ms' },
  { key: 'selected', label: 'selected' },
  { key: 'graph', label: 'graph' },
  { key: 'status', label: 'round' },
  { key: 'roundS', label: 'round s' },
  { key: 'cpuS', label: 'coord. CPU s' },
  { key: 'rssMB', label: 'RSS peak MB' },
  { key: 'heapMB', label: 'heap MB' },
  { key: 'loopP50', label: 'loop p50 ms' },
  { key: 'loopP99', label: 'loop p99 ms' },
  { key: 'loopMax', label: 'loop max ms' },
  { key: 'roundP99', label: 'round p99 ms' },
  { key: 'clientsP99', label: 'clients p99 ms' },
  { key: 'inMB', label: 'in MB' },
  { key: 'outMB', label: 'out MB' },
  { key: 'check', label: 'loss check' },
];

/** One table row. */
export function loadRow(m: StepMeasurement): BenchRow {
  const entry = m.round?.entry ?? null;
  const mb = (bytes: number | null | undefined) =>
    bytes === null || bytes === undefined ? null : bytes / 1e6;
  return {
    clients: m.grow?.registered ?? null,
    connectS: m.grow?.seconds ?? null,
    registerMs: m.connect && m.added > 0 ? m.connect.cpuMs / m.added : null,
    selected: entry?.selected ?? null,
    graph: entry ? graphLabel(entry.selected) : null,
    status: statusLabel(m),
    roundS: entry ? entry.durationMs / 1000 : null,
    cpuS: m.roundStats ? m.roundStats.cpuMs / 1000 : null,
    rssMB: m.step?.peakRssMB ?? null,
    heapMB: m.step?.heapUsedMB ?? null,
    loopP50: m.step?.loop.p50 ?? null,
    loopP99: m.step?.loop.p99 ?? null,
    loopMax: m.step?.loop.max ?? null,
    roundP99: m.roundStats?.loop.p99 ?? null,
    clientsP99: m.clientLoop?.p99 ?? null,
    inMB: mb(m.step?.bytesIn),
    outMB: mb(m.step?.bytesOut),
    check: m.check?.label ?? null,
  };
}

function statusLabel(m: StepMeasurement): string {
  const entry = m.round?.entry;
  if (entry) {
    const share =
      entry.participants === entry.selected ? '' : ` ${entry.participants}/${entry.selected}`;
    return `${entry.status}${share}`;
  }
  switch (m.failure) {
    case null:
      return '-';
    case 'connect':
      return 'not run (connect)';
    case 'timeout':
      return 'timed out';
    case 'coordinator exited':
      return 'coordinator died';
    default:
      return 'error';
  }
}

/** The graph every party derives for `participants` advertisements (all selected answered). */
function graphLabel(participants: number): string {
  if (participants < 3) return '-';
  const graph = graphParams(participants);
  return graph.complete ? 'complete' : `SecAgg+ k=${graph.neighbours}`;
}

/**
 * Secure rounds reveal only the example-weighted mean train loss, decoded from the masked sum.
 * The bench knows every client's count and loss, so it recomputes the plain mean over the
 * clients that trained: equal within quantization (each client's loss element is off by < 1 /
 * (clip / 64 x scale) before weighting) means every masked input was summed and every mask
 * removed. Only meaningful when everyone who trained was summed.
 */
export function lossCheck(
  entry: RoundHistoryEntry,
  fits: readonly FitRecord[],
  clipRange: number,
  modulusBits: 'auto' | SecAggModulusBits,
): LossCheck {
  const none = { expected: null, actual: entry.trainLoss, tolerance: null };
  if (entry.status !== 'completed' || entry.trainLoss === null) {
    return { label: '-', ok: null, ...none };
  }
  if (fits.length !== entry.participants) {
    return {
      label: `n/a (${fits.length} trained, ${entry.participants} summed)`,
      ok: null,
      ...none,
    };
  }
  const weight = fits.reduce((sum, f) => sum + f.numExamples, 0);
  const expected = fits.reduce((sum, f) => sum + f.numExamples * f.trainLoss, 0) / weight;
  // The scale the coordinator chose: under 'auto' a cohort of up to 63 travels at 24 bits,
  // whose coarser scale the tolerance must use, not the 32-bit one.
  const { scale } = chooseSecAggParams(fits.length, {
    vectorLength: 1,
    clipRange,
    weightCap: DEFAULT_WEIGHT_CAP,
    modulusBits,
  });
  const tolerance = (fits.length * MAX_MASKED_LOSS) / (clipRange * scale * weight) + 1e-6;
  const error = Math.abs(entry.trainLoss - expected);
  const ok = error <= tolerance;
  const share = `${Math.round((100 * error) / tolerance)}% of tol`;
  return {
    label: ok ? `ok (${share})` : `FAIL (${share})`,
    ok,
    expected,
    actual: entry.trainLoss,
    tolerance,
  };
}

/**
 * Where one process tops out: the first step that failed (clients could not register, the
 * round failed or timed out) or whose coordinator loop p99 passed SATURATED_LOOP_P99_MS; if
 * none did, the largest step with what was busiest there, and the heap per client to
 * extrapolate from.
 */
export function topsOut(steps: readonly StepMeasurement[], plan: LoadPlan): TopsOut {
  const badIndex = steps.findIndex((s) => s.error !== null || saturated(s));
  const good = badIndex === -1 ? [...steps] : steps.slice(0, badIndex);
  const bad = badIndex === -1 ? null : steps[badIndex]!;
  const first = good[0];
  const last = good[good.length - 1];
  let heapPerClientKB: number | null = null;
  let rssPerClientKB: number | null = null;
  let heapLimitClients: number | null = null;
  if (first?.step && last?.step && last !== first) {
    const clients = last.target - first.target;
    heapPerClientKB = ((last.step.heapUsedMB - first.step.heapUsedMB) * 1024) / clients;
    rssPerClientKB = ((last.step.rssMB - first.step.rssMB) * 1024) / clients;
    if (heapPerClientKB > 0) {
      heapLimitClients = Math.round(
        last.target + ((last.step.heapLimitMB - last.step.heapUsedMB) * 1024) / heapPerClientKB,
      );
    }
  }
  const largestOk = last?.target ?? null;
  let reason: string | null = null;
  let line: string;
  if (bad) {
    reason =
      bad.error?.split('\n')[0] ??
      `coordinator event-loop p99 ${fmt(bad.step!.loop.p99)} ms (saturated)`;
    line =
      `tops out at ${bad.target} clients (${reason}); ` +
      (largestOk === null ? 'no step completed' : `largest step that completed: ${largestOk}`);
  } else if (last) {
    line =
      `not topped out at ${last.target} clients, the largest step (${plan.steps.join(', ')}): ` +
      busiest(last);
  } else line = 'no step ran';
  const registered = good.reduce((sum, s) => sum + s.added, 0);
  const registerCpuMs = good.reduce((sum, s) => sum + (s.connect?.cpuMs ?? 0), 0);
  const registerMs = registered > 0 ? registerCpuMs / registered : null;
  if (registerMs !== null) {
    line +=
      `; a registration costs the coordinator ~${fmt(registerMs)} ms of CPU (at most ` +
      `~${Math.round(1000 / registerMs)} a second on one core)`;
  }
  if (heapPerClientKB !== null) {
    line +=
      `; coordinator heap ~${fmt(heapPerClientKB)} KB and RSS ~${fmt(rssPerClientKB!)} KB per ` +
      'connected client' +
      (heapLimitClients !== null
        ? `, so its ${fmt(last!.step!.heapLimitMB)} MB heap limit would be reached near ` +
          `${heapLimitClients.toLocaleString('en-US')} clients (linear extrapolation)`
        : '');
  }
  return {
    largestOk,
    failedAt: bad?.target ?? null,
    reason,
    registerCpuMs: registerMs,
    heapPerClientKB,
    rssPerClientKB,
    heapLimitClients,
    line,
  };
}

function saturated(s: StepMeasurement): boolean {
  return s.step !== null && s.step.loop.p99 >= SATURATED_LOOP_P99_MS;
}

/** What bound the largest step: the coordinator's loop, or the clients' process. */
function busiest(s: StepMeasurement): string {
  const round = s.roundStats;
  const entry = s.round?.entry;
  if (!round || !entry || !s.clientLoop) return 'no round measured';
  const seconds = entry.durationMs / 1000;
  const cpuShare = round.cpuMs / entry.durationMs;
  const side =
    cpuShare > 0.8
      ? 'the coordinator was CPU-bound for most of the round'
      : `the coordinator was busy ${Math.round(cpuShare * 100)}% of the round; the rest was ` +
        `the clients' process (its loop p99 ${fmt(s.clientLoop.p99)} ms), which shares this ` +
        'machine';
  return (
    `round of ${entry.selected} in ${fmt(seconds)} s, coordinator loop p99 ` +
    `${fmt(s.step!.loop.p99)} ms (max ${fmt(s.step!.loop.max)} ms), RSS ` +
    `${fmt(s.step!.peakRssMB)} MB; ${side}`
  );
}

function fmt(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toPrecision(3);
}

/** How to read the table, then the verdict. */
export function loadNotes(plan: LoadPlan, limit: TopsOut): string[] {
  return [
    `Steps of ${plan.steps.join(', ')} connected clients; at each, one secure round of ` +
      `min(${plan.roundSize}, connected) clients (no over-selection, evaluation off). Clients ` +
      'are added to those of the step before, at most ' +
      `${plan.concurrency} registrations in flight at a time.`,
    'Clients: real socket.io-client websocket connections from this process, each with its ' +
      'own fresh Ed25519 identity, registering and answering through ClientSession and the ' +
      'honest SecAggSubmission (every secure phase with real crypto); training is faked (a ' +
      'small deterministic delta after checking the model hash), so a round is dominated by ' +
      'protocol work, not training.',
    'Coordinator: Coordinator.start() in a child process (mnist, ~20K params, SQLite in a ' +
      'temporary folder), paused between rounds. Its numbers are its own: RSS peak (sampled ' +
      'every 100 ms over the step), heap = heap used after a full GC at the end of the step, ' +
      'CPU = process.cpuUsage during the round, in/out = socket.io payload bytes over the ' +
      "step from its /metrics counters (connect + round). CPU/reg. = its CPU while the step's " +
      'clients registered, per client (signature checks, the signed answer, two database ' +
      'writes; the first step also pays for warm-up).',
    "loop p50/p99/max = the coordinator's event-loop delay (perf_hooks.monitorEventLoopDelay, " +
      '10 ms resolution, taken off) over the whole step; round p99 = during the round only; ' +
      "clients p99 = the bench process's loop during the round (1,000 clients' crypto on one " +
      'loop: when it is high, round time measures the simulated clients as much as the ' +
      'coordinator, since both share this machine).',
    'graph: what every party derives for the round (complete up to 100 participants, SecAgg+ ' +
      'k = 10 x ceil(log2 n) above). loss check: the secure mean train loss (decoded from the ' +
      'masked sum) equals the plain example-weighted mean of what the clients trained, within ' +
      'quantization: every masked input was summed and every mask removed.',
    `A step tops out when its clients cannot all register, its round fails or times out ` +
      `(${Math.round(plan.roundWaitMs / 1000)} s), or the coordinator's loop p99 reaches ` +
      `${SATURATED_LOOP_P99_MS} ms.`,
    limit.line,
  ];
}
