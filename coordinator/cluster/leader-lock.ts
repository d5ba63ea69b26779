/**
 * Leadership of a cluster from PostgreSQL itself, not a consensus of our own: the leader is
 * the process holding a session-level advisory lock named after the experiment, on a
 * connection of its own. PostgreSQL releases the lock the moment that connection ends (the
 * process was killed, the machine vanished once TCP keepalive notices), and a waiting
 * process takes it at its next try. Before each round is recorded, the leader asks the
 * server whether its own session still holds the lock (the fencing check), so a process cut
 * off from the database never records a round after another one took over.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { CohortError, errorMessage } from '../../shared/errors';
import type { Logger } from '../logger';
import { parseDatabaseUrl } from '../persistence/database-url';

/** How often a waiting process tries to take the lock. */
export const LEADER_POLL_MS = 500;
/** The first key of Cohort's advisory locks ("Coh" + 1), so no other application's collides. */
const LOCK_NAMESPACE = 0x436f6801;

/**
 * The second advisory-lock key: a 32-bit hash of the experiment name and the schema holding
 * it (advisory locks are per database, and two schemas may hold experiments of one name).
 */
export function experimentLockKey(experiment: string, schema: string): number {
  return createHash('sha256')
    .update(`cohort-leader:${schema}:${experiment}`)
    .digest()
    .readInt32BE(0);
}

/**
 * A process's claim on its experiment's leadership; emits 'lost' if its session ends while it
 * leads. While it only follows, a failed lock connection is opened again at the next try.
 */
export class LeaderLock extends EventEmitter<{ lost: [Error] }> {
  private held = false;
  private closed = false;
  private client: pg.Client | null;

  private constructor(
    client: pg.Client,
    private readonly open: () => Promise<pg.Client>,
    private readonly key: number,
    private readonly log: Logger,
  ) {
    super();
    this.client = client;
    this.watch(client);
  }

  /** Opens the lock's own connection (not one of the store's pooled ones). */
  static async connect(databaseUrl: string, experiment: string, log: Logger): Promise<LeaderLock> {
    const target = parseDatabaseUrl(databaseUrl);
    if (target.provider !== 'postgresql') {
      throw new CohortError('CONFIG_INVALID', 'cluster mode needs a postgresql:// --database');
    }
    const open = async () => {
      const client = new pg.Client({
        connectionString: target.connectionString,
        keepAlive: true,
        // Names the experiment and process, so an operator can find this session (and end it).
        application_name: `cohort-leader-lock:${process.pid}:${experiment}`.slice(0, 63),
      });
      try {
        await client.connect();
      } catch (error) {
        throw new CohortError(
          'DATABASE_ERROR',
          `cluster mode: cannot open the leader-lock connection: ${errorMessage(error)}`,
        );
      }
      return client;
    };
    return new LeaderLock(await open(), open, experimentLockKey(experiment, target.schema), log);
  }

  /** Whether this process leads (as far as it knows; {@link assertHeld} asks the server). */
  get isLeader(): boolean {
    return this.held;
  }

  /**
   * Waits until this process holds the lock (true) or `signal` aborts (false). A database
   * that is away only delays it: the connection is opened again at each try.
   */
  async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted && !this.closed) {
      try {
        this.client ??= await this.reopen();
        const { rows } = await this.client.query<{ locked: boolean }>(
          'SELECT pg_try_advisory_lock($1::int4, $2::int4) AS locked',
          [LOCK_NAMESPACE, this.key],
        );
        if (rows[0]?.locked) {
          this.held = true;
          return true;
        }
      } catch (error) {
        this.log.warn(`cluster: cannot try the leader lock: ${errorMessage(error)}`);
        this.drop();
      }
      await sleep(LEADER_POLL_MS, signal);
    }
    return false;
  }

  /** The fencing check: throws LEADERSHIP_LOST unless this session still holds the lock. */
  async assertHeld(): Promise<void> {
    const client = this.client;
    if (!this.held || !client) {
      throw new CohortError('LEADERSHIP_LOST', 'this process does not lead');
    }
    try {
      const { rows } = await client.query<{ held: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND pid = pg_backend_pid() AND classid = $1::int4::oid AND objid = $2::int4::oid
           AND objsubid = 2) AS held`,
        [LOCK_NAMESPACE, this.key],
      );
      if (rows[0]?.held) return;
    } catch (error) {
      this.fail(client, error instanceof Error ? error : new Error(String(error)));
    }
    this.held = false;
    throw new CohortError('LEADERSHIP_LOST', 'the leader lock is no longer held by this process');
  }

  /** Releases the lock (by ending its session) and the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.held = false;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private async reopen(): Promise<pg.Client> {
    const client = await this.open();
    this.watch(client);
    return client;
  }

  private watch(client: pg.Client): void {
    client.on('error', (error) => this.fail(client, error));
    client.on('end', () => this.fail(client, new Error('the lock connection ended')));
  }

  /** Forgets a broken connection (a follower opens another at its next try). */
  private drop(): void {
    const client = this.client;
    this.client = null;
    void client?.end().catch(() => undefined);
  }

  private fail(client: pg.Client, error: Error): void {
    if (this.closed || client !== this.client) return;
    const wasLeader = this.held;
    this.held = false;
    this.drop();
    this.log.warn(`cluster: leader-lock connection failed: ${error.message}`);
    if (wasLeader) this.emit('lost', error);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
