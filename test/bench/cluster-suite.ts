/**
 * "cluster": one federation served by 1, 2 and 4 coordinator processes (cluster mode, on the
 * machine's Redis and PostgreSQL), with growing numbers of lightweight clients (real sockets,
 * identities and secure-aggregation crypto, fake training: load-clients.ts) spread evenly
 * over them. Per run: the mean secure round time, clients held per process, the leader's
 * inbound bytes per round (its own clients' sockets plus what the other processes sent it),
 * and each process's resident memory, read from every process's /metrics.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseDatabaseUrl } from '../../coordinator/persistence/database-url';
import type { PostgresTarget } from '../../coordinator/persistence/database-url';
import type { BenchRow, BenchSuite, SuiteContext, SuiteResult } from './bench-types';
import { LoadClientFleet } from './load-clients';

const REDIS_URL = process.env.COHORT_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const POSTGRES_URL = process.env.COHORT_BENCH_POSTGRES_URL ?? 'postgresql://127.0.0.1:5432/test';
const ROUNDS = 3;
/** `pg`'s connection string (the OS user filled in, as psql does). */
const PG_CONNECTION = () => (parseDatabaseUrl(POSTGRES_URL) as PostgresTarget).connectionString;
const START_TIMEOUT_MS = 120_000;

/** The cluster suite. */
export const clusterSuite: BenchSuite = {
  name: 'cluster',
  description:
    'one federation on 1 / 2 / 4 coordinator processes (Redis adapter, PostgreSQL leader lock), ' +
    'growing lightweight secure clients: round time, clients per process, leader inbound bytes',
  run: runClusterSuite,
};

interface ClusterCase {
  gateways: number;
  clients: number;
}

function plan(quick: boolean): ClusterCase[] {
  if (quick) return [1, 2].map((gateways) => ({ gateways, clients: 12 }));
  return [1, 2, 4].flatMap((gateways) => [40, 120].map((clients) => ({ gateways, clients })));
}

/** One `cohort coordinator` process, with its output kept for error messages. */
class ClusterProcess {
  output = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    this.exited = new Promise((resolve) => child.once('close', (code) => resolve(code)));
  }

  async waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.output);
      if (match) return match;
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`no ${pattern} from a cluster process:\n${this.output.slice(-2_000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A gauge's value from a Prometheus text page. */
function metric(page: string, name: string): number {
  const line = page.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').at(-1)) : Number.NaN;
}

async function runCase(c: ClusterCase, context: SuiteContext, dir: string): Promise<BenchRow> {
  const schema = `cohort_bench_${randomBytes(5).toString('hex')}`;
  const database = `${POSTGRES_URL}?schema=${schema}`;
  const experiment = `bench-cluster-${schema}`;
  const cli = join(context.repoRoot, 'dist', 'coordinator', 'cli', 'main.js');
  const processes: ClusterProcess[] = [];
  const fleets: LoadClientFleet[] = [];
  const held: number[] = [];
  try {
    const urls: string[] = [];
    for (let g = 0; g < c.gateways; g++) {
      const args = [
        cli,
        'coordinator',
        ...['--host', '127.0.0.1', '--port', '0', '--task', 'mnist'],
        ...['--database', database, '--cluster', REDIS_URL, '--experiment', experiment],
        ...['--identity', join(dir, 'coordinator.json'), '--rounds', String(ROUNDS)],
        ...['--min-clients', String(c.clients), '--clients-per-round', String(c.clients)],
        ...['--over-selection', '0', '--evaluation', 'none', '--keep-alive'],
        ...['--max-connections-per-address', String(2 * c.clients + 100)],
      ];
      const p = new ClusterProcess(
        spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env }),
      );
      processes.push(p);
      const [, port] = await p.waitFor(
        /listening on http:\/\/127\.0\.0\.1:(\d+)/,
        START_TIMEOUT_MS,
      );
      if (g === 0) await p.waitFor(/cluster: process \w+ leads/, START_TIMEOUT_MS);
      urls.push(`http://127.0.0.1:${port}`);
    }
    for (let g = 0; g < c.gateways; g++) {
      const fleet = await LoadClientFleet.create(urls[g]!, 'mnist');
      fleets.push(fleet);
      const share = Math.floor(c.clients / c.gateways) + (g < c.clients % c.gateways ? 1 : 0);
      held.push((await fleet.grow(share, { concurrency: 8, timeoutMs: 60_000 })).registered);
    }
    context.progress(
      `cluster: ${c.gateways} processes, ${c.clients} clients: running ${ROUNDS} rounds`,
    );
    const leader = processes[0]!;
    await leader.waitFor(new RegExp(`round\\s+${ROUNDS} \\|`), 600_000);
    const pages = await Promise.all(urls.map(async (u) => (await fetch(`${u}/metrics`)).text()));
    const rounds = await readRounds(schema, experiment);
    const completed = rounds.filter((r) => r.status === 'completed');
    const meanSeconds = completed.reduce((s, r) => s + r.duration_ms, 0) / 1000 / completed.length;
    const socketBytes =
      completed.reduce((s, r) => s + Number(r.bytes_received), 0) / completed.length;
    const busBytes = metric(pages[0]!, 'cohort_cluster_bytes_received') / ROUNDS;
    const memories = pages.map((p) => metric(p, 'process_resident_memory_bytes') / 2 ** 20);
    return {
      processes: c.gateways,
      clients: c.clients,
      completed: `${completed.length}/${ROUNDS}`,
      roundSeconds: meanSeconds,
      perProcess: `${Math.min(...held)}-${Math.max(...held)}`,
      leaderInKiB: (socketBytes + busBytes) / 1024,
      busKiB: busBytes / 1024,
      memoryMiB: `${Math.round(Math.min(...memories))}-${Math.round(Math.max(...memories))}`,
    };
  } finally {
    for (const f of fleets) f.close();
    for (const p of processes) p.child.kill('SIGTERM');
    await Promise.all(
      processes.map((p) =>
        Promise.race([p.exited, new Promise((r) => setTimeout(r, 10_000))]).then(() =>
          p.child.kill('SIGKILL'),
        ),
      ),
    );
    await dropSchema(schema);
  }
}

interface RoundRow {
  status: string;
  duration_ms: number;
  bytes_received: string | number;
}

async function readRounds(schema: string, experiment: string) {
  const client = new pg.Client({ connectionString: PG_CONNECTION() });
  await client.connect();
  try {
    const { rows } = await client.query<RoundRow>(
      `SELECT r.status, r.duration_ms, r.bytes_received FROM "${schema}".rounds r
         JOIN "${schema}".experiments e ON e.id = r.experiment_id
       WHERE e.name = $1 ORDER BY r.number, r.attempt`,
      [experiment],
    );
    return rows;
  } finally {
    await client.end();
  }
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_CONNECTION() });
  await client.connect().catch(() => undefined);
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
  await client.end().catch(() => undefined);
}

async function runClusterSuite(context: SuiteContext): Promise<SuiteResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-bench-cluster-'));
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  try {
    for (const c of plan(context.quick)) {
      try {
        rows.push(await runCase(c, context, dir));
      } catch (error) {
        const reason = error instanceof Error ? error.message.split('\n')[0]! : String(error);
        notes.push(`${c.gateways} processes, ${c.clients} clients: FAILED: ${reason}`);
        context.progress(`cluster: ${notes.at(-1)!}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  notes.push(
    `Cluster mode on ${REDIS_URL} and ${POSTGRES_URL}; mnist model (~20K parameters), secure rounds, ` +
      'fake training (the clients of the load suite). "leader in" = its own clients\' socket ' +
      'bytes plus the cluster messages the other processes sent it, per round: the masked ' +
      'vectors arrive as one partial sum per process, so it grows with processes, while keys, ' +
      'share bundles and signatures (small) still grow with clients.',
  );
  return {
    columns: [
      { key: 'processes', label: 'processes' },
      { key: 'clients', label: 'clients' },
      { key: 'completed', label: 'rounds ok' },
      { key: 'roundSeconds', label: 'round s' },
      { key: 'perProcess', label: 'clients/process' },
      { key: 'leaderInKiB', label: 'leader in KiB/round' },
      { key: 'busKiB', label: 'of which cluster KiB' },
      { key: 'memoryMiB', label: 'RSS MiB/process' },
    ],
    rows,
    notes,
    details: { rounds: ROUNDS, plan: plan(context.quick) },
  };
}
