import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { isCohortError } from '../../shared/errors';
import type { PostgresTarget } from '../../coordinator/persistence/database-url';
import { parseDatabaseUrl } from '../../coordinator/persistence/database-url';
import { findMigrationsDir } from '../../coordinator/persistence/migrations';
import { migratePostgres } from '../../coordinator/persistence/postgres-migrator';
import { openStore } from '../../coordinator/persistence/store';
import { schemaFromNothing } from './prisma-cli';
import type { StoreFixture } from './store-contract';
import { storeContract } from './store-contract';
import type { Requirement } from '../helpers/requires';
import { describeRequiring } from '../helpers/requires';

/** The server every development machine and CI runs (trust auth); override to test elsewhere. */
const BASE_URL = process.env.COHORT_TEST_POSTGRES_URL ?? 'postgresql://127.0.0.1:5432/test';
const base = parseDatabaseUrl(BASE_URL) as PostgresTarget;

/**
 * Jest registers tests synchronously, so reachability is probed synchronously, in a child
 * process, before deciding which tests exist.
 */
function probePostgres(): Requirement<null> {
  const script = `
    const pg = require('pg');
    const client = new pg.Client({ connectionString: process.env.PROBE_URL, connectionTimeoutMillis: 3000 });
    client.connect().then(() => client.end()).then(
      () => process.exit(0),
      (error) => { process.stderr.write(String(error && error.message)); process.exit(1); });`;
  const result = spawnSync(process.execPath, ['-e', script], {
    cwd: resolve(__dirname, '../..'),
    env: { ...process.env, PROBE_URL: base.connectionString },
    timeout: 8000,
    encoding: 'utf8',
  });
  if (result.status === 0) return { met: true, value: null };
  const why = result.stderr.trim() || result.error?.message || 'no answer';
  return {
    met: false,
    reason: `PostgreSQL at ${base.display} is unreachable (${why}); start it or set COHORT_TEST_POSTGRES_URL`,
  };
}

/** A URL of the base database pointing at `schema`. */
function urlWithSchema(schema: string): string {
  const url = new URL(BASE_URL);
  url.searchParams.set('schema', schema);
  return url.toString();
}

function freshSchemaName(): string {
  return `cohort_test_${randomBytes(6).toString('hex')}`;
}

/** Runs one query on the base database with `?` placeholders, inside `schema`. */
async function runSql(schema: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: base.connectionString });
  await client.connect();
  try {
    await client.query(`SET search_path TO "${schema}"`);
    let index = 0;
    const numbered = sql.replace(/\?/g, () => `$${++index}`);
    return (await client.query<Record<string, unknown>>(numbered, params)).rows;
  } finally {
    await client.end();
  }
}

async function dropSchema(schema: string): Promise<void> {
  await runSql('public', `DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

function postgresFixture(): Promise<StoreFixture> {
  const schema = freshSchemaName();
  return Promise.resolve({
    open: (options) => openStore(urlWithSchema(schema), options),
    query: (sql, params) => runSql(schema, sql, params),
    migrationsDir: findMigrationsDir('postgresql'),
    destroy: () => dropSchema(schema),
  });
}

/** Columns, indexes and constraints of a schema, with the schema's own name taken out. */
async function describePostgresSchema(schema: string): Promise<unknown> {
  const strip = (text: unknown) =>
    String(text).split(`"${schema}".`).join('').split(`${schema}.`).join('');
  const columns = await runSql(
    schema,
    `SELECT table_name, column_name, data_type, is_nullable, column_default, ordinal_position
     FROM information_schema.columns WHERE table_schema = ? AND table_name <> '_prisma_migrations'
     ORDER BY table_name, ordinal_position`,
    [schema],
  );
  const indexes = await runSql(
    schema,
    `SELECT indexname, indexdef FROM pg_indexes
     WHERE schemaname = ? AND tablename <> '_prisma_migrations' ORDER BY indexname`,
    [schema],
  );
  const constraints = await runSql(
    schema,
    `SELECT c.conname, pg_get_constraintdef(c.oid) AS definition
     FROM pg_constraint c
       JOIN pg_namespace n ON n.oid = c.connamespace
       JOIN pg_class r ON r.oid = c.conrelid
     WHERE n.nspname = ? AND r.relname <> '_prisma_migrations' ORDER BY c.conname`,
    [schema],
  );
  return {
    columns: columns.map((c) => ({
      ...c,
      column_default: c.column_default === null ? null : strip(c.column_default),
    })),
    indexes: indexes.map((i) => ({ name: i.indexname, definition: strip(i.indexdef) })),
    constraints: constraints.map((c) => ({ name: c.conname, definition: strip(c.definition) })),
  };
}

describeRequiring('PostgreSQL', probePostgres(), () => {
  describe('CohortStore contract on PostgreSQL', () => {
    storeContract(postgresFixture);
  });

  describe('PostgreSQL specifics', () => {
    const schemas: string[] = [];
    const newSchema = () => {
      const schema = freshSchemaName();
      schemas.push(schema);
      return schema;
    };
    const temporaryDirs: string[] = [];
    afterAll(async () => {
      for (const schema of schemas.splice(0)) await dropSchema(schema);
      for (const dir of temporaryDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    });

    test('tables live in the schema named by ?schema=, created on demand', async () => {
      const schema = newSchema();
      const store = await openStore(urlWithSchema(schema));
      await store.openExperiment({ name: 'e', task: 'mnist', config: {}, modelSpecHash: 'h' });
      await store.close();
      const tables = await runSql(
        'public',
        'SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name',
        [schema],
      );
      expect(tables.map((t) => t.table_name)).toEqual([
        '_prisma_migrations',
        'checkpoints',
        'clients',
        'enrollments',
        'experiments',
        'metrics',
        'participations',
        'rounds',
      ]);
      expect(await runSql(schema, 'SELECT name FROM experiments')).toEqual([{ name: 'e' }]);
    });

    test('coordinators starting together apply each migration once', async () => {
      const schema = newSchema();
      const stores = await Promise.all([1, 2, 3].map(() => openStore(urlWithSchema(schema))));
      await Promise.all(stores.map((store) => store.close()));
      const rows = await runSql(
        schema,
        'SELECT migration_name FROM _prisma_migrations ORDER BY migration_name',
      );
      const expected = readdirSync(findMigrationsDir('postgresql'), { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => ({ migration_name: entry.name }))
        .sort((a, b) => a.migration_name.localeCompare(b.migration_name));
      expect(rows).toEqual(expected);
    });

    test('the committed migrations build exactly the schema in schema.prisma', async () => {
      const migrated = newSchema();
      await migratePostgres(
        parseDatabaseUrl(urlWithSchema(migrated)) as PostgresTarget,
        findMigrationsDir('postgresql'),
      );
      const fresh = newSchema();
      const script = await schemaFromNothing('postgresql', base.connectionString);
      await runSql('public', `CREATE SCHEMA "${fresh}"`);
      await runSql(fresh, script);
      expect(await describePostgresSchema(migrated)).toEqual(await describePostgresSchema(fresh));
    });

    test('a failing migration is rolled back whole and named', async () => {
      const schema = newSchema();
      const dir = mkdtempSync(join(tmpdir(), 'cohort-pg-migrations-'));
      temporaryDirs.push(dir);
      const write = (name: string, sql: string) => {
        mkdirSync(join(dir, name), { recursive: true });
        writeFileSync(join(dir, name, 'migration.sql'), sql);
      };
      const target = parseDatabaseUrl(urlWithSchema(schema)) as PostgresTarget;
      write('001_first', 'CREATE TABLE "a" ("x" INTEGER);');
      expect(await migratePostgres(target, dir)).toEqual(['001_first']);
      write('002_second', 'CREATE TABLE "b" ("x" INTEGER);\nINSERT INTO "missing" VALUES (1);');
      let caught: unknown;
      try {
        await migratePostgres(target, dir);
      } catch (error) {
        caught = error;
      }
      expect(isCohortError(caught, 'DATABASE_ERROR')).toBe(true);
      expect((caught as Error).message).toContain('002_second');
      const tables = await runSql(
        'public',
        'SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name',
        [schema],
      );
      expect(tables.map((t) => t.table_name)).toEqual(['_prisma_migrations', 'a']);
      const names = await runSql(schema, 'SELECT migration_name FROM _prisma_migrations');
      expect(names).toEqual([{ migration_name: '001_first' }]);
    });
  });
});
