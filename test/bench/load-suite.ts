/**
 * "load": how one coordinator process copes as real clients pile up. Simulated clients (real
 * sockets and identities, real registration and secure-aggregation crypto, fake training; see
 * load-clients.ts) connect to a coordinator in its own process (load-coordinator-process.ts)
 * in steps of 100, 500 and 1,000; at each step it runs one secure round of min(200, connected)
 * clients (SecAgg+ neighbour graph above 100) and the coordinator's memory, CPU, event-loop
 * delay and bytes are read inside its process. A step that fails or times out is where a single
 * process tops out; it is reported, not thrown.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IntervalHistogram } from 'node:perf_hooks';
import { loopDelayOf, startLoopMonitor } from './loop-delay';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import { DEFAULT_WEIGHT_CAP } from '../../shared/secagg';
import type { BenchSuite, SuiteContext, SuiteResult } from './bench-types';
import { LoadClientFleet } from './load-clients';
import { LoadCoordinator } from './load-coordinator';
import type { LoadPlan, StepMeasurement } from './load-report';
import { LOAD_COLUMNS, loadNotes, loadRow, lossCheck, topsOut } from './load-report';

/** The smallest built-in model (~20K parameters): what each round ships and masks. */
const TASK = 'mnist';
/** The coordinator's defaults, set explicitly because the loss check derives its tolerance. */
const CLIP_RANGE = 4;
const SECURE_BITS = 'auto';

/** The load suite. */
export const loadSuite: BenchSuite = {
  name: 'load',
  description:
    'one coordinator process under 100 / 500 / 1,000 connected clients (real sockets and ' +
    'identities, fake training), secure rounds of 200 (SecAgg+): memory, event-loop delay, ' +
    'round time, where it tops out',
  run: runLoadSuite,
};

/**
 * Steps and round size. Default: 100, 500, 1,000 clients, rounds of 200 (~3 minutes on 2
 * cores). `quick`: 20 and 120 clients, rounds of 110, so the smoke run still crosses into the
 * SecAgg+ graph (above 100 participants) in under a minute. `full` goes on to 2,000, 3,000
 * and 5,000 clients (~10 minutes).
 */
export function planLoad(quick: boolean, full: boolean): LoadPlan {
  if (quick) {
    return {
      steps: [20, 120],
      roundSize: 110,
      concurrency: 16,
      registerWaitMs: 60_000,
      roundWaitMs: 90_000,
    };
  }
  return {
    steps: full ? [100, 500, 1_000, 2_000, 3_000, 5_000] : [100, 500, 1_000],
    roundSize: 200,
    concurrency: 16,
    registerWaitMs: 120_000,
    roundWaitMs: 300_000,
  };
}

/**
 * The coordinator's options: paused between rounds by the process itself, a round size of
 * `roundSize` without over-selection (exactly min(roundSize, connected) are asked), no
 * evaluation, limits raised for 2,000+ loopback connections from one address, and a database
 * in `dir`.
 */
export function loadConfig(plan: LoadPlan, dir: string): CoordinatorConfigInput {
  const largest = Math.max(...plan.steps);
  return {
    host: '127.0.0.1',
    port: 0,
    task: TASK,
    experiment: 'bench-load',
    rounds: 100_000,
    minClients: 5,
    clientsPerRound: plan.roundSize,
    overSelection: 0,
    evaluation: 'none',
    secureAggregation: true,
    clipRange: CLIP_RANGE,
    secureBits: SECURE_BITS,
    weightCap: DEFAULT_WEIGHT_CAP,
    seed: 0,
    roundTimeoutMs: plan.roundWaitMs,
    phaseTimeoutMs: plan.roundWaitMs,
    registerTimeoutMs: plan.registerWaitMs,
    // Every client comes from 127.0.0.1; room for reconnects on top.
    maxConnectionsPerAddress: 2 * largest + 100,
    database: `file:${join(dir, 'load.db')}`,
  };
}

function runLoadSuite(context: SuiteContext): Promise<SuiteResult> {
  return runLoad(planLoad(context.quick, context.full), context);
}

/** Runs `plan`: every step until one fails, then stops every client and the coordinator. */
export async function runLoad(plan: LoadPlan, context: SuiteContext): Promise<SuiteResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-bench-load-'));
  const clientLoop = startLoopMonitor();
  const steps: StepMeasurement[] = [];
  let coordinator: LoadCoordinator | null = null;
  let fleet: LoadClientFleet | null = null;
  try {
    context.progress('load: starting the coordinator process');
    coordinator = await LoadCoordinator.start(loadConfig(plan, dir));
    fleet = await LoadClientFleet.create(coordinator.url, TASK);
    for (const step of plan.steps) {
      const rig = { plan, coordinator, fleet, clientLoop, context };
      const measured = await measureStep(step, rig);
      steps.push(measured);
      if (measured.error !== null) {
        context.progress(`load: ${step} clients: FAILED: ${measured.error.split('\n')[0]}`);
        break;
      }
    }
  } finally {
    clientLoop.disable();
    fleet?.close();
    await coordinator?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const limit = topsOut(steps, plan);
  context.progress(`load: ${limit.line}`);
  return {
    columns: LOAD_COLUMNS,
    rows: steps.map((s) => loadRow(s)),
    notes: loadNotes(plan, limit),
    details: { plan, task: TASK, clipRange: CLIP_RANGE, topsOut: limit, steps },
  };
}

/** The parties a step drives, and what it reports progress to. */
interface StepRig {
  plan: LoadPlan;
  coordinator: LoadCoordinator;
  fleet: LoadClientFleet;
  /** The bench process's event-loop delay (the clients' side). */
  clientLoop: IntervalHistogram;
  context: SuiteContext;
}

/**
 * One step: grow the fleet to `step` clients, then run one round and read the coordinator's
 * costs. Never throws: what went wrong is the step's `failure` and `error`.
 */
async function measureStep(step: number, rig: StepRig): Promise<StepMeasurement> {
  const m: StepMeasurement = {
    target: step,
    added: 0,
    grow: null,
    connect: null,
    round: null,
    roundStats: null,
    clientLoop: null,
    step: null,
    check: null,
    clientsRssMB: null,
    failure: null,
    error: null,
  };
  try {
    await runStep(m, rig);
  } catch (error) {
    m.failure = rig.coordinator.exitReason !== null ? 'coordinator exited' : 'error';
    m.error = error instanceof Error ? error.message : String(error);
    m.clientLoop ??= loopDelayOf(rig.clientLoop);
    m.step ??= await rig.coordinator.stats('step', false).catch(() => null);
  }
  m.clientsRssMB = process.memoryUsage().rss / (1024 * 1024);
  return m;
}

/** Fills `m` step by step; returns early (with `failure` set) where the step cannot go on. */
async function runStep(m: StepMeasurement, rig: StepRig): Promise<void> {
  const { plan, coordinator, fleet, context } = rig;
  const before = fleet.registered;
  await coordinator.stats('step', true);
  await coordinator.stats('phase', true);
  context.progress(`load: connecting clients ${fleet.size + 1}..${m.target}`);
  m.grow = await fleet.grow(m.target, {
    concurrency: plan.concurrency,
    timeoutMs: plan.registerWaitMs,
    progress: (n) => context.progress(`load:   ${n} registered`),
  });
  m.connect = await coordinator.stats('phase', true);
  m.added = m.grow.registered - before;
  if (m.grow.registered < m.target) {
    m.failure = 'connect';
    m.error =
      `only ${m.grow.registered} of ${m.target} clients registered` +
      (m.grow.failures.length > 0 ? `: ${m.grow.failures[0]}` : '');
    m.step = await coordinator.stats('step', false);
    return;
  }
  context.progress(
    `load: ${m.target} clients registered in ${m.grow.seconds.toFixed(1)} s; ` +
      `secure round of ${Math.min(plan.roundSize, m.target)}`,
  );
  rig.clientLoop.reset();
  m.round = await coordinator.round(plan.roundWaitMs);
  m.clientLoop = loopDelayOf(rig.clientLoop);
  m.roundStats = await coordinator.stats('phase', true);
  m.step = await coordinator.stats('step', true);
  const entry = m.round.entry;
  if (!entry) {
    const stuck = m.round.phases[m.round.phases.length - 1]?.phase ?? 'selection';
    m.failure = 'timeout';
    m.error = `no round ended within ${Math.round(plan.roundWaitMs / 1000)} s (stuck in ${stuck})`;
    return;
  }
  m.check = lossCheck(entry, fleet.fitsOf(entry.round), CLIP_RANGE, SECURE_BITS);
  context.progress(
    `load: ${m.target} clients: round ${entry.status} (${entry.participants}/${entry.selected}) ` +
      `in ${(entry.durationMs / 1000).toFixed(1)} s, loss check ${m.check.label}`,
  );
  if (entry.status !== 'completed') {
    m.failure = 'round';
    m.error = `the round failed: ${entry.failureReason ?? 'no reason recorded'}`;
  }
}
