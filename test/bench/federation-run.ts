/**
 * One federated run for the round and accuracy benches: a coordinator and N Node clients in
 * this process over loopback socket.io, wired like coordinator/cli/simulation.ts (same Coordinator,
 * connectNodeClient, partitioning and client options), plus what simulate() does not expose:
 * the coordinator's own phase events ('round-phase': training, each secure-aggregation phase,
 * evaluating; the same events cohort_phase_duration_seconds is fed from), each client's
 * training interval (its session state), and stopping once a round meets a condition.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connectNodeClient } from '../../client-node/node-client';
import type { NodeClient } from '../../client-node/node-client';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import { Coordinator } from '../../coordinator/coordinator';
import type { RoundHistoryEntry } from '../../coordinator/history';
import type { Dataset } from '../../shared/data/dataset';
import { limitExamples, selectExamples } from '../../shared/data/dataset';
import { parsePartitionSpec, partitionClients } from '../../shared/data/partition';
import { generateIdentity } from '../../shared/identity';
import type { TaskName } from '../../shared/model/registry';
import { DEFAULT_MIN_PARTICIPANTS, MIN_THRESHOLD } from '../../shared/secagg/params';

/** What to run. */
export interface FederationOptions {
  clients: number;
  /** Round cap: the run ends after this many rounds, or earlier when `stopWhen` says so. */
  rounds: number;
  task: TaskName;
  data: { train: Dataset; test: Dataset };
  /** 'iid', 'dirichlet:ALPHA' or 'shards:K' (default iid). */
  partition?: string;
  secure: boolean;
  /** Cap on each client's training set after partitioning (like simulate's `limit`). */
  limit?: number;
  /** Cap on the coordinator's test set (centralized evaluation). */
  testLimit?: number;
  backend: string;
  seed?: number;
  /** Any other coordinator option. */
  coordinator?: Partial<CoordinatorConfigInput>;
  /** Ends the run after a round for which this returns true. */
  stopWhen?(entry: RoundHistoryEntry): boolean;
  /** Called after every round (progress lines). */
  onRound?(round: MeasuredRound): void;
}

/** One round as the coordinator recorded it, with its phases and the clients' training. */
export interface MeasuredRound {
  entry: RoundHistoryEntry;
  /** Coordinator phases in order, each ms from its 'round-phase' event to the next (or the end). */
  phases: { phase: string; ms: number }[];
  /** First client's training start to the last client's training end (ms). */
  trainingMs: number;
  /** Training examples the round trained on, summed over the clients that trained. */
  examples: number;
}

/** The whole run. */
export interface FederationResult {
  rounds: MeasuredRound[];
  /** The run ended because `stopWhen` was met (not the round cap). */
  stoppedEarly: boolean;
  clientExamples: number[];
}

interface RoundTrace {
  phases: { phase: string; at: number }[];
  trainStart: number;
  trainEnd: number;
  examples: number;
}

/** Runs one federation to its round cap or its stop condition; throws if a round fails. */
export async function runFederation(options: FederationOptions): Promise<FederationResult> {
  const seed = options.seed ?? 0;
  const { train, test } = options.data;
  const spec = parsePartitionSpec(options.partition ?? 'iid');
  const parts = partitionClients(options.data, options.clients, spec, seed);
  const trainParts = parts.train;
  const testParts = parts.test;
  const shards = trainParts.map((part) =>
    limitExamples(selectExamples(train, part), options.limit),
  );
  if (shards.some((s) => s.count === 0)) throw new Error('a client received no training examples');

  const tempDir = mkdtempSync(join(tmpdir(), 'cohort-bench-fed-'));
  const traces = new Map<number, RoundTrace>();
  const rounds: MeasuredRound[] = [];
  let current: RoundTrace | null = null;
  let stoppedEarly = false;
  let failure: Error | null = null;
  let coordinator: Coordinator | null = null;
  const clients: NodeClient[] = [];
  const finished = new Promise<void>((resolve) => {
    const observe = (c: Coordinator): void => {
      c.on('round-start', ({ round }) => {
        current = {
          phases: [],
          trainStart: Infinity,
          trainEnd: -Infinity,
          examples: 0,
        };
        traces.set(round, current);
      });
      c.on('round-phase', ({ round, phase }) => {
        traces.get(round)?.phases.push({ phase, at: performance.now() });
      });
      c.on('round-end', (entry) => {
        const end = performance.now();
        const trace = traces.get(entry.round);
        current = null;
        if (!trace) return;
        const measured: MeasuredRound = {
          entry,
          phases: trace.phases.map((p, i) => ({
            phase: p.phase,
            ms: (trace.phases[i + 1]?.at ?? end) - p.at,
          })),
          trainingMs: Math.max(0, trace.trainEnd - trace.trainStart),
          examples: trace.examples,
        };
        rounds.push(measured);
        options.onRound?.(measured);
        if (entry.status !== 'completed') {
          failure = new Error(`round ${entry.round} failed: ${entry.failureReason}`);
          void c.stop().then(resolve);
        } else if (options.stopWhen?.(entry) === true && entry.round < options.rounds) {
          stoppedEarly = true;
          void c.stop().then(resolve);
        }
      });
      c.on('finished', () => resolve());
    };
    void Coordinator.start(
      {
        host: '127.0.0.1',
        port: 0,
        task: options.task,
        rounds: options.rounds,
        minClients: options.clients,
        seed,
        database: `file:${join(tempDir, 'bench.db')}`,
        overSelection: 0,
        secureAggregation: options.secure,
        ...options.coordinator,
      },
      { testSet: limitExamples(test, options.testLimit), log: quietLog, observe },
    ).then(
      async (started) => {
        coordinator = started;
        started.done.catch((error: unknown) => {
          if (!stoppedEarly && failure === null) failure = asError(error);
          resolve();
        });
        try {
          for (let i = 0; i < options.clients; i++) {
            const shard = shards[i]!;
            let startedAt = 0;
            clients.push(
              await connectNodeClient({
                server: started.url,
                task: options.task,
                train: shard,
                test: selectExamples(test, testParts[i]!),
                identity: generateIdentity(),
                backend: options.backend,
                displayName: `bench-${i + 1}`,
                reconnectDelayMs: 200,
                reconnectDelayMaxMs: 2_000,
                allowPlain: !options.secure,
                shareMetrics: true,
                ...(options.clients < DEFAULT_MIN_PARTICIPANTS
                  ? { minParticipants: MIN_THRESHOLD }
                  : {}),
                events: {
                  onState: (state) => {
                    const now = performance.now();
                    const trace: RoundTrace | null = current;
                    if (state === 'training') {
                      startedAt = now;
                      if (trace) trace.trainStart = Math.min(trace.trainStart, now);
                    } else if (startedAt > 0) {
                      if (trace) {
                        trace.trainEnd = Math.max(trace.trainEnd, now);
                        trace.examples += fitExamples(shard.count, options.coordinator);
                      }
                      startedAt = 0;
                    }
                  },
                },
              }),
            );
          }
        } catch (error) {
          failure = asError(error);
          resolve();
        }
      },
      (error: unknown) => {
        failure = asError(error);
        resolve();
      },
    );
  });
  try {
    await finished;
  } finally {
    for (const client of clients) client.close();
    if (coordinator !== null) await (coordinator as Coordinator).stop();
    rmSync(tempDir, { recursive: true, force: true });
  }
  if (failure !== null) throw failure as Error;
  return { rounds, stoppedEarly, clientExamples: shards.map((s) => s.count) };
}

/** Examples one client trains on per round: its shard, capped by maxExamples, times epochs. */
function fitExamples(count: number, coordinator?: Partial<CoordinatorConfigInput>): number {
  const cap = coordinator?.maxExamples ?? 0;
  const perEpoch = cap > 0 ? Math.min(cap, count) : count;
  return perEpoch * (coordinator?.epochs ?? 1);
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** The coordinator's log, silenced: the bench prints its own progress. */
const quietLog = {
  info: () => undefined,
  warn: () => undefined,
  debug: () => undefined,
};

/** Sum of the phases named (ms); 0 when none ran. */
export function phaseMs(round: MeasuredRound, names: readonly string[]): number {
  return round.phases.filter((p) => names.includes(p.phase)).reduce((s, p) => s + p.ms, 0);
}
