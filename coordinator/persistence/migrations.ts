import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CohortError } from '../../shared/errors';

/**
 * Migrations are the committed `prisma/<provider>/migrations/<name>/migration.sql` files,
 * applied by Cohort itself at start-up because `prisma migrate deploy` cannot run offline
 * against PostgreSQL under Prisma 6's JavaScript engine (prisma/orm#27403). What was applied
 * is recorded in Prisma's own `_prisma_migrations` table, with Prisma's columns and checksum,
 * so the Prisma CLI (`migrate status`, `migrate deploy`) agrees with us afterwards.
 */

/** The database flavours Cohort ships migrations for. */
export type MigrationProvider = 'sqlite' | 'postgresql';

/** One committed migration. */
export interface MigrationFile {
  /** Folder name, e.g. `20261128000000_init`; the order of application is name order. */
  name: string;
  sql: string;
  /** What Prisma stores in `_prisma_migrations.checksum`: SHA-256 hex of the file. */
  checksum: string;
}

/** One row of `_prisma_migrations`, as far as planning needs it. */
export interface AppliedMigration {
  migrationName: string;
  checksum: string;
  finishedAt: unknown;
  rolledBackAt: unknown;
}

/** What to do now: the migrations to apply, in order, and notes for the log. */
export interface MigrationPlan {
  pending: MigrationFile[];
  warnings: string[];
}

/** Name of Prisma's bookkeeping table. */
export const MIGRATIONS_TABLE = '_prisma_migrations';

/** Prisma's own DDL for the bookkeeping table (copied column for column, per provider). */
export const MIGRATIONS_TABLE_DDL: Record<MigrationProvider, string> = {
  sqlite: `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)`,
  postgresql: `CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`,
};

/** The PostgreSQL advisory lock key Prisma Migrate takes, so our runs and its runs serialize. */
export const PRISMA_ADVISORY_LOCK_KEY = 72707369;

/** SHA-256 hex of a migration script, exactly as Prisma computes `checksum`. */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}

/**
 * Finds `prisma/<provider>/migrations` by walking up from this file, so it is found from the
 * sources (tests), from `dist/` (built) and from an installed package alike.
 */
export function findMigrationsDir(provider: MigrationProvider, from: string = __dirname): string {
  let dir = from;
  for (;;) {
    const candidate = join(dir, 'prisma', provider, 'migrations');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new CohortError(
        'DATABASE_ERROR',
        `cannot find the ${provider} migrations (prisma/${provider}/migrations) above ${from}`,
      );
    }
    dir = parent;
  }
}

/** Reads every `<name>/migration.sql` under `dir`, in name order. */
export function readMigrations(dir: string): MigrationFile[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(dir, entry.name, 'migration.sql')))
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: migrationChecksum(sql) };
    });
}

/**
 * Decides which migrations to apply, with Prisma's rules: rolled-back rows are ignored, a
 * migration that failed and was never resolved blocks everything (as Prisma's P3009 does), a
 * migration applied but unknown here means a newer Cohort migrated this database and is
 * refused, and an edited migration file is only warned about (Prisma `migrate deploy` does
 * the same; line-ending conversions by git do not count as edits).
 */
export function planMigrations(
  files: readonly MigrationFile[],
  applied: readonly AppliedMigration[],
): MigrationPlan {
  const live = applied.filter((row) => row.rolledBackAt === null);
  const failed = live.filter((row) => row.finishedAt === null);
  if (failed.length > 0) {
    const names = failed.map((row) => row.migrationName).join(', ');
    throw new CohortError(
      'DATABASE_ERROR',
      `migration ${names} failed earlier and is still marked as failed in _prisma_migrations; ` +
        'fix the database, then mark it with `prisma migrate resolve --applied|--rolled-back`',
    );
  }
  const byName = new Map(files.map((file) => [file.name, file]));
  const unknown = live.filter((row) => !byName.has(row.migrationName));
  if (unknown.length > 0) {
    const names = unknown.map((row) => row.migrationName).join(', ');
    throw new CohortError(
      'DATABASE_ERROR',
      `the database has migrations this Cohort does not know (${names}): it was set up by a ` +
        'newer version; upgrade Cohort or use another database',
    );
  }
  const warnings: string[] = [];
  const done = new Set<string>();
  for (const row of live) {
    done.add(row.migrationName);
    const file = byName.get(row.migrationName);
    if (file && !checksumMatches(file.sql, row.checksum)) {
      warnings.push(
        `migration ${row.migrationName} was edited after it was applied (checksum differs)`,
      );
    }
  }
  return { pending: files.filter((file) => !done.has(file.name)), warnings };
}

function checksumMatches(sql: string, checksum: string): boolean {
  return (
    migrationChecksum(sql) === checksum ||
    migrationChecksum(sql.replace(/\r\n/g, '\n')) === checksum ||
    migrationChecksum(sql.replace(/\r?\n/g, '\r\n')) === checksum
  );
}
