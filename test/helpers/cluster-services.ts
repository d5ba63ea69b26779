import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import pg from 'pg';
import { parseDatabaseUrl } from '../../coordinator/persistence/database-url';
import type { PostgresTarget } from '../../coordinator/persistence/database-url';
import type { Requirement } from './requires';

/** The server every development machine and CI runs (trust auth); override to test elsewhere. */
export const POSTGRES_BASE_URL =
  process.env.COHORT_TEST_POSTGRES_URL ?? 'postgresql://127.0.0.1:5432/test';

/**
 * What the cluster suites need, probed synchronously (jest registers tests synchronously):
 * PostgreSQL reachable, and a `redis-server` binary to start private servers with (the suite
 * stops one to play an outage, so it never touches the machine's shared Redis).
 */
export function probeClusterServices(): Requirement<null> {
  const script = `
    const pg = require('pg');
    const client = new pg.Client({ connectionString: process.env.PROBE_URL, connectionTimeoutMillis: 3000 });
    client.connect().then(() => client.end()).then(
      () => process.exit(0),
      (error) => { process.stderr.write(String(error && error.message)); process.exit(1); });`;
  const base = parseDatabaseUrl(POSTGRES_BASE_URL) as PostgresTarget;
  const probe = spawnSync(process.execPath, ['-e', script], {
    cwd: resolve(__dirname, '../..'),
    env: { ...process.env, PROBE_URL: base.connectionString },
    timeout: 8000,
    encoding: 'utf8',
  });
  if (probe.status !== 0) {
    const why = probe.stderr.trim() || probe.error?.message || 'no answer';
    return {
      met: false,
      reason: `PostgreSQL at ${base.display} is unreachable (${why}); start it or set COHORT_TEST_POSTGRES_URL`,
    };
  }
  const redis = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (redis.status !== 0) {
    return { met: false, reason: 'redis-server is not installed (apt-get install redis-server)' };
  }
  return { met: true, value: null };
}

/** A fresh schema of the test database, dropped by `drop()`. */
export interface TestSchema {
  url: string;
  /** Ends every PostgreSQL session with this application name (as a lost connection would). */
  terminateSessions(applicationName: string): Promise<void>;
  /** The weights checkpointed with one round (the store's API returns only the latest). */
  checkpointWeights(experiment: string, round: number): Promise<Uint8Array>;
  drop(): Promise<void>;
}

export function freshPostgresSchema(): TestSchema {
  const schema = `cohort_cluster_${randomBytes(6).toString('hex')}`;
  const url = new URL(POSTGRES_BASE_URL);
  url.searchParams.set('schema', schema);
  const query = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => {
    const base = parseDatabaseUrl(POSTGRES_BASE_URL) as PostgresTarget;
    const client = new pg.Client({ connectionString: base.connectionString });
    await client.connect();
    try {
      return (await client.query<R>(sql, params)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    url: url.toString(),
    async checkpointWeights(experiment, round) {
      const rows = await query<{ weights: Buffer }>(
        `SELECT c.weights FROM "${schema}".checkpoints c
           JOIN "${schema}".experiments e ON e.id = c.experiment_id
         WHERE e.name = $1 AND c.round_number = $2`,
        [experiment, round],
      );
      if (!rows[0]) throw new Error(`no checkpoint of round ${round}`);
      return new Uint8Array(rows[0].weights);
    },
    async terminateSessions(applicationName) {
      await query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [applicationName],
      );
    },
    async drop() {
      await query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    },
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** A private redis-server on a free loopback port, which a test may stop and start again. */
export class RedisServer {
  private child: ChildProcess | null = null;

  private constructor(readonly port: number) {}

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    await server.resume();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (again) on the same port and waits until it answers. */
  async resume(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.child = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ping = spawnSync('redis-cli', ['-p', String(this.port), 'ping'], { encoding: 'utf8' });
      if (ping.stdout?.trim() === 'PONG') return;
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not start`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** An outage: SIGKILL, as a crashed or unreachable server. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}
