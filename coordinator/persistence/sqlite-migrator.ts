import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { CohortError } from '../../shared/errors';
import type { AppliedMigration, MigrationFile } from './migrations';
import { MIGRATIONS_TABLE_DDL, planMigrations, readMigrations } from './migrations';

/** How long to wait for another process's write lock (e.g. a second coordinator migrating). */
const BUSY_TIMEOUT_MS = 15_000;

/**
 * Timestamps as Prisma writes them into SQLite (`2026-01-02T03:04:05.678+00:00`), so rows we
 * write and rows the Prisma CLI writes look the same.
 */
export function sqliteTimestamp(date: Date): string {
  return date.toISOString().replace('Z', '+00:00');
}

/**
 * Brings a SQLite database file up to date with the committed migrations, creating the file
 * (and its folder) when missing. Everything runs in one IMMEDIATE transaction, which is also
 * the lock that keeps two coordinators from migrating at once; foreign keys are switched off
 * meanwhile and checked before commit, as SQLite's documented procedure for table rebuilds
 * requires (a rebuilt table must not cascade-delete the rows that point at it).
 * Returns the names of the migrations applied.
 */
export function migrateSqlite(
  path: string,
  migrationsDir: string,
  log: (line: string) => void = () => undefined,
): string[] {
  const files = readMigrations(migrationsDir);
  let db: Database.Database;
  try {
    mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  } catch (error) {
    throw new CohortError(
      'DATABASE_ERROR',
      `cannot open SQLite database ${path}: ${(error as Error).message}`,
    );
  }
  try {
    // Write-ahead logging (kept by the file): readers never block the coordinator's writes,
    // and a crash mid-write leaves the last committed round intact.
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = OFF');
    db.exec('BEGIN IMMEDIATE');
    try {
      const applied = applyPending(db, files, log);
      const violations = db.pragma('foreign_key_check') as unknown[];
      if (violations.length > 0) {
        throw new CohortError(
          'DATABASE_ERROR',
          `migrations left ${violations.length} foreign-key violation(s); nothing was applied`,
        );
      }
      db.exec('COMMIT');
      return applied;
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw error;
    }
  } catch (error) {
    if (error instanceof CohortError) throw error;
    throw new CohortError(
      'DATABASE_ERROR',
      `migrating SQLite database ${path} failed: ${(error as Error).message}`,
    );
  } finally {
    db.close();
  }
}

function applyPending(
  db: Database.Database,
  files: readonly MigrationFile[],
  log: (line: string) => void,
): string[] {
  db.exec(MIGRATIONS_TABLE_DDL.sqlite);
  const rows = db
    .prepare(
      `SELECT migration_name AS migrationName, checksum, finished_at AS finishedAt,
              rolled_back_at AS rolledBackAt
       FROM _prisma_migrations ORDER BY started_at`,
    )
    .all() as AppliedMigration[];
  const plan = planMigrations(files, rows);
  for (const warning of plan.warnings) log(`database: ${warning}`);
  const record = db.prepare(
    `INSERT INTO _prisma_migrations
       (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at,
        applied_steps_count)
     VALUES (?, ?, ?, ?, NULL, NULL, ?, 1)`,
  );
  for (const migration of plan.pending) {
    const startedAt = new Date();
    try {
      db.exec(migration.sql);
    } catch (error) {
      throw new CohortError(
        'DATABASE_ERROR',
        `migration ${migration.name} failed, nothing was applied: ${(error as Error).message}`,
      );
    }
    record.run(
      randomUUID(),
      migration.checksum,
      sqliteTimestamp(new Date()),
      migration.name,
      sqliteTimestamp(startedAt),
    );
    log(`database: applied migration ${migration.name}`);
  }
  return plan.pending.map((migration) => migration.name);
}
