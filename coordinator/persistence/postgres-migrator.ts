import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { CohortError } from '../../shared/errors';
import type { PostgresTarget } from './database-url';
import type { AppliedMigration } from './migrations';
import {
  MIGRATIONS_TABLE_DDL,
  PRISMA_ADVISORY_LOCK_KEY,
  planMigrations,
  readMigrations,
} from './migrations';

/** How long a connection attempt may take before the database counts as unreachable. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** How long to wait for another migrator (Cohort or Prisma) to release the lock. */
const LOCK_TIMEOUT = '60s';

/** Double-quotes an identifier already checked to be plain (see parseDatabaseUrl). */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Turns a connection failure into DATABASE_ERROR with what a person needs to fix it: where
 * we tried to connect and the driver's own reason.
 */
export function unreachableError(target: PostgresTarget, error: unknown): CohortError {
  const reason = error instanceof Error ? error.message || error.name : String(error);
  const code = (error as { code?: unknown }).code;
  return new CohortError(
    'DATABASE_ERROR',
    `cannot connect to PostgreSQL at ${target.display}: ${reason}` +
      (typeof code === 'string' ? ` (${code})` : '') +
      '. Is the server running, and are the host, port, database and user in the URL right?',
  );
}

/**
 * Brings a PostgreSQL schema up to date with the committed migrations, creating the schema
 * when missing. Holds Prisma Migrate's advisory lock meanwhile (so a second coordinator, or
 * the Prisma CLI, waits), and applies each migration with its bookkeeping row in one
 * transaction: PostgreSQL's DDL is transactional, so a failed migration leaves no trace.
 * Returns the names of the migrations applied.
 */
export async function migratePostgres(
  target: PostgresTarget,
  migrationsDir: string,
  log: (line: string) => void = () => undefined,
): Promise<string[]> {
  const files = readMigrations(migrationsDir);
  const client = new pg.Client({
    connectionString: target.connectionString,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  // A connection dropped while idle would otherwise crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw unreachableError(target, error);
  }
  try {
    await client.query(`SET lock_timeout = '${LOCK_TIMEOUT}'`);
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_ADVISORY_LOCK_KEY]);
    try {
      await useSchema(client, target.schema);
      await client.query(MIGRATIONS_TABLE_DDL.postgresql);
      const { rows } = await client.query<AppliedMigration>(
        `SELECT migration_name AS "migrationName", checksum, finished_at AS "finishedAt",
                rolled_back_at AS "rolledBackAt"
         FROM _prisma_migrations ORDER BY started_at`,
      );
      const plan = planMigrations(files, rows);
      for (const warning of plan.warnings) log(`database: ${warning}`);
      for (const migration of plan.pending) {
        const startedAt = new Date();
        await client.query('BEGIN');
        try {
          // One simple-protocol query may hold many statements; inside BEGIN..COMMIT they
          // all commit or none does.
          await client.query(migration.sql);
          await client.query(
            `INSERT INTO _prisma_migrations
               (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at,
                applied_steps_count)
             VALUES ($1, $2, $3, $4, NULL, NULL, $5, 1)`,
            [randomUUID(), migration.checksum, new Date(), migration.name, startedAt],
          );
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw new CohortError(
            'DATABASE_ERROR',
            `migration ${migration.name} failed, nothing of it was applied: ${(error as Error).message}`,
          );
        }
        log(`database: applied migration ${migration.name}`);
      }
      return plan.pending.map((migration) => migration.name);
    } finally {
      await client
        .query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK_KEY])
        .catch(() => undefined);
    }
  } catch (error) {
    if (error instanceof CohortError) throw error;
    throw new CohortError(
      'DATABASE_ERROR',
      `migrating PostgreSQL ${target.display} failed: ${(error as Error).message}`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Points the session at the target schema, creating it if needed. Existence is checked first
 * because CREATE SCHEMA IF NOT EXISTS still demands the CREATE privilege on the database.
 */
async function useSchema(client: pg.Client, schema: string): Promise<void> {
  const found = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  if (found.rowCount === 0) {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
  }
  await client.query(`SET search_path TO ${quoteIdentifier(schema)}`);
}
