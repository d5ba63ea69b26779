import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectNodeClient } from '../../client-node/node-client';
import type { NodeClient } from '../../client-node/node-client';
import type { Dataset } from '../../shared/data/dataset';
import { limitExamples, selectExamples } from '../../shared/data/dataset';
import { parsePartitionSpec, partitionClients } from '../../shared/data/partition';
import type { TaskName } from '../../shared/model/registry';
import { CohortError } from '../../shared/errors';
import { generateIdentity } from '../../shared/identity';
import { createRng, mixSeeds } from '../../shared/random';
import { DEFAULT_MIN_PARTICIPANTS, MIN_THRESHOLD } from '../../shared/secagg/params';
import type { CoordinatorConfigInput } from '../config';
import { Coordinator } from '../coordinator';
import type { RunHistory } from '../history';
import type { Logger } from '../logger';

/** A simulated federation: one coordinator and N clients in this process, on real sockets. */
export interface SimulationOptions {
  clients: number;
  rounds: number;
  task: TaskName;
  /** Full train/test data; partitioned among the clients here. */
  data: { train: Dataset; test: Dataset };
  /** 'iid', 'dirichlet:ALPHA' or 'shards:K'. */
  partition?: string;
  seed?: number;
  /**
   * Browser tabs to wait for besides the simulated clients (every round needs them all); the
   * tabs get public sample shards cut from `data.train`.
   */
  browserTabs?: number;
  /** Probability that a selected client vanishes halfway through a round's training. */
  dropout?: number;
  /** Cap on each client's training examples (after partitioning). */
  limit?: number;
  /** Cap on the coordinator's test set, for quick runs. */
  testLimit?: number;
  /** tfjs backend name in use (reported by the clients). */
  backend: string;
  /** Database URL; default: a temporary SQLite file removed afterwards. */
  database?: string;
  /** Any other coordinator option (strategy, epochs, secure aggregation...). */
  coordinator?: Partial<CoordinatorConfigInput>;
  log?: Logger;
  /** Observes coordinator progress from before it starts listening (the CLI prints it). */
  onCoordinator?: (coordinator: Coordinator) => void;
}

/**
 * Runs a whole federated experiment in one process over loopback socket.io: the same
 * coordinator and client code as a deployment, so a simulation is an integration test.
 * Fault injection (`dropout`) disconnects clients mid-round; they rejoin after the round.
 */
export async function simulate(options: SimulationOptions): Promise<RunHistory> {
  const seed = options.seed ?? 0;
  const dropout = options.dropout ?? 0;
  if (!Number.isInteger(options.clients) || options.clients < 1) {
    throw new CohortError('CONFIG_INVALID', '--clients must be a positive integer');
  }
  if (!(dropout >= 0 && dropout < 1))
    throw new CohortError('CONFIG_INVALID', '--dropout must be in [0, 1)');
  const spec = parsePartitionSpec(options.partition ?? 'iid');
  const { train, test } = options.data;
  const parts = partitionClients(options.data, options.clients, spec, seed);
  const trainParts = parts.train;
  const testParts = parts.test;
  if (trainParts.some((p) => p.length === 0)) {
    throw new CohortError(
      'CONFIG_INVALID',
      'a client received no training examples: fewer clients or another partition',
    );
  }

  let tempDir: string | null = null;
  let database = options.database;
  if (database === undefined) {
    tempDir = mkdtempSync(join(tmpdir(), 'cohort-sim-'));
    database = `file:${join(tempDir, 'simulation.db')}`;
  }
  const coordinator = await Coordinator.start(
    {
      host: '127.0.0.1',
      port: 0,
      task: options.task,
      rounds: options.rounds,
      minClients: options.clients + (options.browserTabs ?? 0),
      seed,
      database,
      overSelection: 0,
      ...options.coordinator,
    },
    {
      testSet: limitExamples(test, options.testLimit),
      ...((options.browserTabs ?? 0) > 0
        ? { sampleData: { data: train, description: `${options.task} training set (public)` } }
        : {}),
      ...(options.log ? { log: options.log } : {}),
      ...(options.onCoordinator ? { observe: options.onCoordinator } : {}),
      ...(tempDir
        ? { databaseLabel: 'temporary SQLite file, removed after the run (--database keeps one)' }
        : {}),
    },
  );
  const clients: NodeClient[] = [];
  // The operator's own in-process clients: they join plain rounds only when the simulated
  // coordinator runs them, share their metrics, and accept the small cohort they were given.
  const secure = options.coordinator?.secureAggregation !== false;
  const cohort = expectedCohort(options.clients + (options.browserTabs ?? 0), options.coordinator);
  try {
    for (let i = 0; i < options.clients; i++) {
      const rng = createRng(mixSeeds(seed, i, 0xd809));
      clients.push(
        await connectNodeClient({
          server: coordinator.url,
          task: options.task,
          train: limitExamples(selectExamples(train, trainParts[i]!), options.limit),
          test: selectExamples(test, testParts[i]!),
          identity: generateIdentity(),
          backend: options.backend,
          displayName: `sim-${i + 1}`,
          reconnectDelayMs: 200,
          reconnectDelayMaxMs: 2_000,
          allowPlain: !secure,
          shareMetrics: true,
          ...(cohort < DEFAULT_MIN_PARTICIPANTS ? { minParticipants: MIN_THRESHOLD } : {}),
          ...(dropout > 0
            ? { faults: { dropMidRound: () => rng.next() < dropout, rejoinAfterMs: 300 } }
            : {}),
        }),
      );
    }
    const history = await coordinator.done;
    await Promise.all(clients.map((c) => c.session.finished.catch(() => undefined)));
    return history;
  } finally {
    for (const client of clients) client.close();
    await coordinator.stop();
    if (tempDir) rmSync(tempDir, { recursive: true, force: true });
  }
}

/** How many clients a simulated round aggregates: the configured cohort, else everyone. */
function expectedCohort(clients: number, coordinator?: Partial<CoordinatorConfigInput>): number {
  if (coordinator?.clientsPerRound !== undefined)
    return Math.min(clients, coordinator.clientsPerRound);
  if (coordinator?.fraction !== undefined) return Math.ceil(coordinator.fraction * clients);
  return clients;
}
