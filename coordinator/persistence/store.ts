import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import { CohortError } from '../../shared/errors';
import { PrismaClient as PostgresPrismaClient } from '../generated/postgresql/client';
import { PrismaClient as SqlitePrismaClient } from '../generated/sqlite/client';
import type { PostgresTarget, SqliteTarget } from './database-url';
import { parseDatabaseUrl } from './database-url';
import { findMigrationsDir } from './migrations';
import { CONNECT_TIMEOUT_MS, migratePostgres, unreachableError } from './postgres-migrator';
import type { StoreClient } from './prisma-store';
import { PrismaCohortStore } from './prisma-store';
import { migrateSqlite } from './sqlite-migrator';
import type { CohortStore, OpenStoreOptions } from './store-types';

export type {
  CheckpointInput,
  ClientInput,
  CohortStore,
  EnrollmentInput,
  EnrollmentSummary,
  OpenedExperiment,
  OpenExperimentInput,
  OpenStoreOptions,
  ParticipationInput,
  ParticipationSummary,
  RoundRecordInput,
  RoundSummary,
  StoredCheckpoint,
} from './store-types';
export { parseDatabaseUrl, redactDatabaseUrl } from './database-url';

/** Checkpoints kept per experiment unless OpenStoreOptions.keepCheckpoints says otherwise. */
export const DEFAULT_KEEP_CHECKPOINTS = 3;
/** How long SQLite waits for another connection's write lock before failing, by default. */
const SQLITE_BUSY_TIMEOUT_MS = 15_000;

/**
 * Opens the store named by a database URL: `file:./cohort.db` (SQLite, the default, no
 * service needed) or `postgresql://...` / `postgres://...` (optional `?schema=NAME`). Applies
 * pending migrations first, recorded in Prisma's `_prisma_migrations` table. Refuses other
 * schemes with CONFIG_INVALID; an unreachable database or a failed migration is
 * DATABASE_ERROR with the reason and the (password-free) location.
 */
export async function openStore(
  databaseUrl: string,
  options: OpenStoreOptions = {},
): Promise<CohortStore> {
  const log = options.log ?? (() => undefined);
  const keep = options.keepCheckpoints ?? DEFAULT_KEEP_CHECKPOINTS;
  if (!Number.isInteger(keep) || keep < 1) {
    throw new CohortError('CONFIG_INVALID', `keepCheckpoints must be an integer >= 1, got ${keep}`);
  }
  const target = parseDatabaseUrl(databaseUrl);
  return target.provider === 'sqlite'
    ? openSqlite(target, keep, options.busyTimeoutMs ?? SQLITE_BUSY_TIMEOUT_MS, log)
    : openPostgres(target, keep, log);
}

async function openSqlite(
  target: SqliteTarget,
  keep: number,
  busyTimeoutMs: number,
  log: (line: string) => void,
): Promise<CohortStore> {
  migrateSqlite(target.path, findMigrationsDir('sqlite'), log);
  const adapter = new PrismaBetterSQLite3({
    url: `file:${target.path}`,
    timeout: busyTimeoutMs,
  });
  const prisma = new SqlitePrismaClient({ adapter });
  await connect(prisma, `SQLite database ${target.path}`);
  log(`database: SQLite ${target.path}`);
  return new PrismaCohortStore(prisma, keep, `SQLite database ${target.path}`, busyTimeoutMs);
}

async function openPostgres(
  target: PostgresTarget,
  keep: number,
  log: (line: string) => void,
): Promise<CohortStore> {
  await migratePostgres(target, findMigrationsDir('postgresql'), log);
  const adapter = new PrismaPg(
    { connectionString: target.connectionString, connectionTimeoutMillis: CONNECT_TIMEOUT_MS },
    { schema: target.schema },
  );
  // Same models, same API; the types differ only in the isolation levels $transaction
  // accepts, which the store never sets. The contract suite runs the store on both.
  const prisma = new PostgresPrismaClient({ adapter }) as unknown as StoreClient;
  try {
    await prisma.$connect();
  } catch (error) {
    await prisma.$disconnect().catch(() => undefined);
    throw unreachableError(target, error);
  }
  log(`database: PostgreSQL ${target.display} (schema ${target.schema})`);
  return new PrismaCohortStore(prisma, keep, `PostgreSQL ${target.display}`);
}

async function connect(prisma: StoreClient, location: string): Promise<void> {
  try {
    await prisma.$connect();
  } catch (error) {
    await prisma.$disconnect().catch(() => undefined);
    throw new CohortError(
      'DATABASE_ERROR',
      `cannot open ${location}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}
