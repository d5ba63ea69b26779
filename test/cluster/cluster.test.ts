import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeClient, NodeClientOptions } from '../../client-node/node-client';
import type { IdentityKeyPair } from '../../shared/identity';
import { generateIdentity } from '../../shared/identity';
import { resolveCoordinatorConfig, secureModulusBits } from '../../coordinator/config';
import { chooseSecAggParams } from '../../shared/secagg';
import { bytesToFloats } from '../../shared/weights/codec';
import { useWasmBackend } from '../helpers/backend';
import {
  assertCliBuilt,
  CliProcess,
  coordinatorArgs,
  expectExit,
  killAllCliProcesses,
} from '../helpers/cli-process';
import {
  RedisServer,
  freshPostgresSchema,
  probeClusterServices,
} from '../helpers/cluster-services';
import { closeAll, startClients } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRun } from '../helpers/persisted-rounds';
import { describeRequiring } from '../helpers/requires';

/**
 * Cluster mode for real: three `cohort coordinator` processes on one private Redis and one
 * PostgreSQL schema, nine real Node clients spread over them (each given all three URLs, so
 * it fails over), secure rounds with real training. The processes are killed with SIGKILL
 * and Redis is taken away, as a machine would fail.
 */

/** A cold start (tfjs, wasm, the test set) on two shared cores. */
const STARTUP_TIMEOUT_MS = 120_000;
/** The README's bound on a takeover: PostgreSQL releases the dead leader's lock at once. */
const TAKEOVER_BOUND_MS = 10_000;
const CLIENTS = 9;
const PER_CLIENT = 150;

let dir: string;
let redis: RedisServer | undefined;
let schema: ReturnType<typeof freshPostgresSchema> | undefined;
let clients: NodeClient[] = [];

beforeAll(() => assertCliBuilt());
afterEach(async () => {
  closeAll(clients);
  clients = [];
  await killAllCliProcesses();
  await redis?.kill();
  redis = undefined;
  await schema?.drop();
  schema = undefined;
  rmSync(dir, { recursive: true, force: true });
});

interface Cluster {
  processes: CliProcess[];
  urls: string[];
  database: string;
  experiment: string;
}

/** Starts `count` processes of one cluster; the first is started alone, so it leads. */
async function startCluster(
  count: number,
  flags: Record<string, string | number>,
  database: string,
): Promise<Cluster> {
  const experiment = `cluster-${Math.random().toString(36).slice(2, 8)}`;
  const processes: CliProcess[] = [];
  const urls: string[] = [];
  for (let i = 0; i < count; i++) {
    const { args } = coordinatorArgs(dir, {
      '--database': database,
      '--cluster': redis!.url,
      '--experiment': experiment,
      '--min-clients': CLIENTS,
      '--batch-size': 32,
      '--test-limit': 200,
      ...flags,
    });
    const process = new CliProcess(args);
    const [, port] = await process.waitForOutput(
      /listening on http:\/\/127\.0\.0\.1:(\d+)/,
      STARTUP_TIMEOUT_MS,
    );
    if (i === 0) await process.waitForOutput(/cluster: process \w+ leads/, STARTUP_TIMEOUT_MS);
    processes.push(process);
    urls.push(`http://127.0.0.1:${port}`);
  }
  return { processes, urls, database, experiment };
}

/** Client i connects first to process i mod n, then fails over to the next ones in turn. */
async function joinClients(
  urls: readonly string[],
  identities: IdentityKeyPair[],
  server?: string,
  extra: Partial<NodeClientOptions> = {},
) {
  const [backend, data] = await Promise.all([
    useWasmBackend(),
    smallMnist(CLIENTS * PER_CLIENT, 100),
  ]);
  clients = await startClients(server ?? urls[0]!, CLIENTS, data, PER_CLIENT, backend, (i) => ({
    identity: identities[i]!,
    minParticipants: 3,
    ...extra,
    ...(server === undefined
      ? { server: urls.map((_, k) => urls[(i + k) % urls.length]!).join(',') }
      : {}),
  }));
}

/** Which processes' clients registered there, from their output. */
function joinedAt(process: CliProcess): number {
  return (process.stdout.match(/client \w+ joined/g) ?? []).length;
}

/**
 * The reference run: the same nine clients (keys, shards, seeds) on one process with SQLite,
 * with the cluster's round flags; returns what its database holds.
 */
async function runAlone(
  experiment: string,
  identities: IdentityKeyPair[],
  flags: Record<string, string | number>,
  extra: Partial<NodeClientOptions> = {},
) {
  const single = coordinatorArgs(dir, {
    ...flags,
    '--min-clients': CLIENTS,
    '--batch-size': 32,
    '--test-limit': 200,
    '--experiment': experiment,
  });
  const alone = new CliProcess(single.args);
  const [, port] = await alone.waitForOutput(
    /listening on http:\/\/127\.0\.0\.1:(\d+)/,
    STARTUP_TIMEOUT_MS,
  );
  await joinClients([], identities, `http://127.0.0.1:${port}`, extra);
  expectExit(await alone.exited, 0, 'single process');
  return readPersistedRun(single.database, experiment);
}

/** The largest elementwise difference of two models. */
function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((max, v, i) => Math.max(max, Math.abs(v - b[i]!)), 0);
}

/**
 * After the leader of a 3-round run left during round 2: the others finish cleanly, round 2's
 * first attempt is recorded aborted and its second completed, and no completed round is lost.
 */
async function expectTakeover(cluster: Cluster, followers: CliProcess[]) {
  const results = await Promise.all(followers.map((p) => p.exited));
  results.forEach((r, i) => expectExit(r, 0, `follower ${i}`));
  const run = await readPersistedRun(cluster.database, cluster.experiment);
  expect(run.rounds.map((r) => [r.number, r.attempt, r.status])).toEqual([
    [1, 1, 'completed'],
    [2, 1, 'aborted'],
    [2, 2, 'completed'],
    [3, 1, 'completed'],
  ]);
  return run;
}

describeRequiring('cluster mode (PostgreSQL, redis-server)', probeClusterServices(), () => {
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cohort-cluster-'));
    redis = await RedisServer.start();
    schema = freshPostgresSchema();
  });

  test('three processes, nine clients, three secure rounds: the same model as one process, accuracy rises', async () => {
    const identities = Array.from({ length: CLIENTS }, () => generateIdentity());
    const cluster = await startCluster(3, { '--rounds': 3 }, schema!.url);
    await joinClients(cluster.urls, identities);
    const results = await Promise.all(cluster.processes.map((p) => p.exited));
    results.forEach((r, i) => expectExit(r, 0, `cluster process ${i}`));
    // Every process held clients of its own: the leader really aggregated across gateways.
    for (const p of cluster.processes) expect(joinedAt(p)).toBeGreaterThanOrEqual(3);
    // And every process followed the federation's rounds (its log, dashboard and /metrics).
    for (const p of cluster.processes.slice(1)) {
      expect(p.stdout).toMatch(/round\s+3 \| clients\s+9\/9/);
      expect(p.stdout).toMatch(/3\/3 rounds completed/);
    }

    const run = await readPersistedRun(cluster.database, cluster.experiment);
    expect(
      run.rounds.map((r) => [r.number, r.status, r.participants, r.secureAggregation]),
    ).toEqual([
      [1, 'completed', CLIENTS, true],
      [2, 'completed', CLIENTS, true],
      [3, 'completed', CLIENTS, true],
    ]);
    const accuracy = run.rounds.map((r) => r.testAccuracy!);
    expect(accuracy[2]!).toBeGreaterThan(accuracy[0]!);
    closeAll(clients);

    const reference = await runAlone(cluster.experiment, identities, { '--rounds': 1 });
    // Round 1 started from the same model and trained the same updates: the two aggregates
    // differ only by each run's own stochastic rounding, at most one step per client.
    const clustered = bytesToFloats(await schema!.checkpointWeights(cluster.experiment, 1));
    const expected = bytesToFloats(reference.checkpoint!.weights);
    const maxDiff = maxDifference(clustered, expected);
    const config = resolveCoordinatorConfig({ task: 'mnist' });
    const { scale } = chooseSecAggParams(CLIENTS, {
      vectorLength: expected.length,
      clipRange: config.clipRange,
      weightCap: config.weightCap,
      modulusBits: secureModulusBits(config),
    });
    // One quantization step of the weighted mean (every client weighs PER_CLIENT examples).
    const step = 1 / (scale * CLIENTS * PER_CLIENT);
    expect(maxDiff).toBeLessThanOrEqual(2 * CLIENTS * step);
    // Not close by accident: round 2 moved the model far more than that.
    const later = bytesToFloats(await schema!.checkpointWeights(cluster.experiment, 2));
    const moved = later.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i]!)), 0);
    expect(moved).toBeGreaterThan(5 * 2 * CLIENTS * step);
  });

  test('a plain round through three processes: each gateway sends one mean, the model is the one-process model', async () => {
    const identities = Array.from({ length: CLIENTS }, () => generateIdentity());
    const plain = { '--rounds': 1, '--secure-aggregation': 'off' };
    const cluster = await startCluster(3, plain, schema!.url);
    await joinClients(cluster.urls, identities, undefined, { allowPlain: true });
    const results = await Promise.all(cluster.processes.map((p) => p.exited));
    results.forEach((r, i) => expectExit(r, 0, `cluster process ${i}`));
    const run = await readPersistedRun(cluster.database, cluster.experiment);
    expect(run.rounds.map((r) => [r.status, r.participants, r.secureAggregation])).toEqual([
      ['completed', CLIENTS, false],
    ]);
    // The leader received its own three clients' updates and one mean from each gateway.
    const leaderIn = run.rounds[0]!.bytesReceived;
    closeAll(clients);

    const reference = await runAlone(cluster.experiment, identities, plain, { allowPlain: true });
    const clustered = bytesToFloats(run.checkpoint!.weights);
    const expected = bytesToFloats(reference.checkpoint!.weights);
    // No quantization in plain rounds: only float32 rounding of the gateways' means differs.
    expect(maxDifference(clustered, expected)).toBeLessThan(1e-6);
    expect(reference.rounds[0]!.trainLoss).toBeCloseTo(run.rounds[0]!.trainLoss!, 6);
    // One process received all nine updates over its sockets; the leader only its own three.
    expect(leaderIn).toBeLessThan(reference.rounds[0]!.bytesReceived / 2);
  });

  test('SIGKILL the leader mid-round: another process leads, the round is recorded aborted, the run completes', async () => {
    const identities = Array.from({ length: CLIENTS }, () => generateIdentity());
    const cluster = await startCluster(3, { '--rounds': 3 }, schema!.url);
    const [leader, ...followers] = cluster.processes as [CliProcess, ...CliProcess[]];
    await joinClients(cluster.urls, identities);
    await leader.waitForOutput(/round 2: training on/, STARTUP_TIMEOUT_MS);
    leader.child.kill('SIGKILL');
    const killedAt = Date.now();
    expect((await leader.exited).signal).toBe('SIGKILL');

    const takeover = await Promise.race(
      followers.map((p) =>
        p.waitForOutput(/cluster: process \w+ leads .*after round (\d+)/, STARTUP_TIMEOUT_MS),
      ),
    );
    expect(Date.now() - killedAt).toBeLessThan(TAKEOVER_BOUND_MS);
    expect(takeover[1]).toBe('1');
    const run = await expectTakeover(cluster, followers);
    // The dead leader's clients came back through the others: the last round had all nine.
    expect(run.rounds.at(-1)!.participants).toBe(CLIENTS);
    expect(run.lastCompletedRound).toBe(3);
  });

  test("the leader's PostgreSQL session is cut: it stops with LEADERSHIP_LOST and records nothing more; another process finishes", async () => {
    const identities = Array.from({ length: CLIENTS }, () => generateIdentity());
    const cluster = await startCluster(3, { '--rounds': 3, '--epochs': 2 }, schema!.url);
    const [leader, ...followers] = cluster.processes as [CliProcess, ...CliProcess[]];
    await joinClients(cluster.urls, identities);
    await leader.waitForOutput(/round 2: training on/, STARTUP_TIMEOUT_MS);
    // What a network partition from the database looks like to PostgreSQL: the session ends.
    await schema!.terminateSessions(`cohort-leader-lock:${leader.child.pid}:${cluster.experiment}`);
    const deposed = await leader.exited;
    expect(deposed.code).not.toBe(0);
    expect(deposed.stdout + deposed.stderr).toMatch(/LEADERSHIP_LOST/);
    expect(deposed.stdout).not.toMatch(/round\s+2 \|/);
    await expectTakeover(cluster, followers);
  });

  test('SIGKILL a gateway mid-round: the round completes without its clients, who rejoin elsewhere', async () => {
    const identities = Array.from({ length: CLIENTS }, () => generateIdentity());
    const cluster = await startCluster(3, { '--rounds': 3, '--epochs': 2 }, schema!.url);
    const [leader, other, victim] = cluster.processes as [CliProcess, CliProcess, CliProcess];
    await joinClients(cluster.urls, identities);
    await leader.waitForOutput(/round 2: training on/, STARTUP_TIMEOUT_MS);
    const held = joinedAt(victim);
    victim.child.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');
    expectExit(await leader.exited, 0, 'leader');
    expectExit(await other.exited, 0, 'the other gateway');

    const run = await readPersistedRun(cluster.database, cluster.experiment);
    expect(run.rounds.map((r) => [r.number, r.status])).toEqual([
      [1, 'completed'],
      [2, 'completed'],
      [3, 'completed'],
    ]);
    const round2 = run.rounds[1]!;
    expect(held).toBeGreaterThanOrEqual(3);
    expect(round2.participants).toBe(CLIENTS - held);
    expect(round2.dropped).toBe(held);
    expect(run.rounds[2]!.participants).toBe(CLIENTS);
  });

  test('a Redis outage of a few seconds: the round in flight ends cleanly, training resumes when Redis is back', async () => {
    const identities = Array.from({ length: CLIENTS }, () => generateIdentity());
    const cluster = await startCluster(3, { '--rounds': 4, '--epochs': 2 }, schema!.url);
    const [leader, ...followers] = cluster.processes as [CliProcess, ...CliProcess[]];
    await joinClients(cluster.urls, identities);
    await leader.waitForOutput(/round 2: training on/, STARTUP_TIMEOUT_MS);
    await redis!.kill();
    await new Promise((r) => setTimeout(r, 4_000));
    await redis!.resume();
    const results = await Promise.all([leader, ...followers].map((p) => p.exited));
    results.forEach((r, i) => expectExit(r, 0, `process ${i}`));

    const run = await readPersistedRun(cluster.database, cluster.experiment);
    // Nothing left half-done, and every round number was attempted in order.
    expect(run.rounds.every((r) => r.status === 'completed' || r.status === 'failed')).toBe(true);
    expect(run.rounds.map((r) => r.number)).toEqual([1, 2, 3, 4]);
    // Round 2 lost the other processes' clients (failed, or completed with the leader's own).
    expect(run.rounds[1]!.participants).toBeLessThan(CLIENTS);
    // Once Redis was back, the whole federation trained together again.
    expect(run.rounds[3]!.status).toBe('completed');
    expect(run.rounds[3]!.participants).toBe(CLIENTS);
  });
});
