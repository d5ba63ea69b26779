import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isCohortError } from '../../shared/errors';
import { findMigrationsDir } from '../../coordinator/persistence/migrations';
import { migrateSqlite } from '../../coordinator/persistence/sqlite-migrator';
import { openStore } from '../../coordinator/persistence/store';
import { runPrismaCli, schemaFromNothing } from './prisma-cli';
import type { StoreFixture } from './store-contract';
import { storeContract } from './store-contract';

const temporaryDirs: string[] = [];

function temporaryDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-sqlite-'));
  temporaryDirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of temporaryDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function sqliteFixture(): Promise<StoreFixture> {
  const dir = temporaryDir();
  // A folder that does not exist yet: openStore must create it.
  const path = join(dir, 'nested', 'cohort.db');
  return Promise.resolve({
    open: (options) => openStore(`file:${path}`, options),
    query: (sql, params = []) => {
      const db = new Database(path, { readonly: true });
      try {
        return Promise.resolve(db.prepare(sql).all(...params) as Array<Record<string, unknown>>);
      } finally {
        db.close();
      }
    },
    migrationsDir: findMigrationsDir('sqlite'),
    destroy: () => {
      rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
  });
}

describe('CohortStore contract on SQLite', () => {
  storeContract(sqliteFixture);
});

describe('SQLite specifics', () => {
  test('runs in WAL mode and waits out another process holding the write lock', async () => {
    const dir = temporaryDir();
    const path = join(dir, 'busy.db');
    const store = await openStore(`file:${path}`);
    try {
      const db = new Database(path, { readonly: true });
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      db.close();
      const { experimentId } = await store.openExperiment({
        name: 'busy',
        task: 'mnist',
        config: {},
        modelSpecHash: 'a'.repeat(64),
      });
      // Another process takes the write lock for 1.5 s (the store's own calls are
      // synchronous underneath, so the holder cannot live in this event loop).
      const holder = spawn(
        process.execPath,
        [
          '-e',
          `const db = new (require('better-sqlite3'))(${JSON.stringify(path)});
           db.exec('BEGIN IMMEDIATE'); db.exec('CREATE TABLE held_by_other (x)');
           console.log('locked');
           setTimeout(() => { db.exec('COMMIT'); db.close(); }, 1500);`,
        ],
        { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const exited = new Promise((resolve) => holder.once('exit', resolve));
      await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
      await store.beginRound({
        experimentId,
        number: 1,
        secureAggregation: false,
        startedAt: new Date(),
      });
      // It waited for the lock (busy timeout) rather than failing with SQLITE_BUSY: the other
      // transaction had committed by the time this write went through.
      const check = new Database(path, { readonly: true });
      expect(
        check.prepare("SELECT name FROM sqlite_master WHERE name = 'held_by_other'").all(),
      ).toHaveLength(1);
      check.close();
      expect((await store.listRounds(experimentId)).map((r) => r.status)).toEqual(['running']);
      await exited;
    } finally {
      await store.close();
    }
  });

  test('a relative file: URL is relative to the working directory', async () => {
    const dir = temporaryDir();
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const store = await openStore('file:./relative.db');
      await store.close();
    } finally {
      process.chdir(cwd);
    }
    expect(existsSync(join(dir, 'relative.db'))).toBe(true);
  });

  test('the Prisma CLI agrees that the database is up to date', async () => {
    const dir = temporaryDir();
    const url = `file:${join(dir, 'cli.db')}`;
    const store = await openStore(url);
    await store.close();
    const stdout = await runPrismaCli(['migrate', 'status'], 'sqlite', url);
    expect(stdout).toContain('Database schema is up to date!');
    // Timestamps in the text form Prisma's SQLite adapter writes, e.g. 2026-01-02T03:04:05.678+00:00.
    const db = new Database(join(dir, 'cli.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT started_at, finished_at FROM _prisma_migrations').all();
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows as Array<Record<string, unknown>>) {
        expect(row.started_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/);
        expect(row.finished_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/);
      }
    } finally {
      db.close();
    }
  });

  test('the committed migrations build exactly the schema in schema.prisma', async () => {
    const dir = temporaryDir();
    const migrated = join(dir, 'migrated.db');
    migrateSqlite(migrated, findMigrationsDir('sqlite'));
    const fresh = join(dir, 'fresh.db');
    const script = await schemaFromNothing('sqlite', `file:${join(dir, 'cli.db')}`);
    const db = new Database(fresh);
    db.exec(script);
    db.close();
    expect(describeSqliteSchema(migrated)).toEqual(describeSqliteSchema(fresh));
  });

  test('a failing migration leaves the database as it was and says which one failed', () => {
    const dir = temporaryDir();
    const migrations = join(dir, 'migrations');
    const write = (name: string, sql: string) => {
      mkdirSync(join(migrations, name), { recursive: true });
      writeFileSync(join(migrations, name, 'migration.sql'), sql);
    };
    write('001_first', 'CREATE TABLE "a" ("x" INTEGER);');
    const path = join(dir, 'm.db');
    expect(migrateSqlite(path, migrations)).toEqual(['001_first']);
    write('002_second', 'CREATE TABLE "b" ("x" INTEGER);\nINSERT INTO "missing" VALUES (1);');
    let caught: unknown;
    try {
      migrateSqlite(path, migrations);
    } catch (error) {
      caught = error;
    }
    expect(isCohortError(caught, 'DATABASE_ERROR')).toBe(true);
    expect((caught as Error).message).toContain('002_second');
    const db = new Database(path, { readonly: true });
    try {
      const tables = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .all()
        .map((row) => (row as { name: string }).name);
      expect(tables).toEqual(['_prisma_migrations', 'a']);
      const names = db.prepare('SELECT migration_name FROM _prisma_migrations').all();
      expect(names).toEqual([{ migration_name: '001_first' }]);
    } finally {
      db.close();
    }
  });

  test('an unopenable file is a DATABASE_ERROR naming the path', async () => {
    const dir = temporaryDir();
    const blocker = join(dir, 'not-a-folder');
    writeFileSync(blocker, 'x');
    let caught: unknown;
    try {
      await openStore(`file:${join(blocker, 'cohort.db')}`);
    } catch (error) {
      caught = error;
    }
    expect(isCohortError(caught, 'DATABASE_ERROR')).toBe(true);
    expect((caught as Error).message).toContain(blocker);
  });
});

/** Tables, columns, indexes and foreign keys of a SQLite file, in a comparable form. */
function describeSqliteSchema(path: string): unknown {
  const db = new Database(path, { readonly: true });
  try {
    const tables = db
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN " +
          "('_prisma_migrations', 'sqlite_sequence') ORDER BY name",
      )
      .all()
      .map((row) => (row as { name: string }).name);
    return tables.map((table) => ({
      table,
      columns: db.pragma(`table_info("${table}")`),
      indexes: (db.pragma(`index_list("${table}")`) as Array<{ name: string; unique: number }>)
        .map((index) => ({
          name: index.name,
          unique: index.unique,
          columns: (db.pragma(`index_info("${index.name}")`) as Array<{ name: string }>).map(
            (column) => column.name,
          ),
        }))
        .sort((a, b) => a.name.localeCompare(b.name)),
      foreignKeys: (db.pragma(`foreign_key_list("${table}")`) as Array<Record<string, unknown>>)
        .map(({ table: target, from, to, on_update, on_delete }) => ({
          target,
          from,
          to,
          on_update,
          on_delete,
        }))
        .sort((a, b) => String(a.from).localeCompare(String(b.from))),
    }));
  } finally {
    db.close();
  }
}
