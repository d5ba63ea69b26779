import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isCohortError } from '../../shared/errors';
import type { AppliedMigration, MigrationFile } from '../../coordinator/persistence/migrations';
import {
  findMigrationsDir,
  migrationChecksum,
  planMigrations,
  readMigrations,
} from '../../coordinator/persistence/migrations';

const ROOT = resolve(__dirname, '../..');

function file(name: string, sql = `CREATE TABLE "${name}" ("x" INTEGER);\n`): MigrationFile {
  return { name, sql, checksum: migrationChecksum(sql) };
}

function applied(migration: MigrationFile, overrides: Partial<AppliedMigration> = {}) {
  return {
    migrationName: migration.name,
    checksum: migration.checksum,
    finishedAt: new Date(),
    rolledBackAt: null,
    ...overrides,
  };
}

function errorMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (isCohortError(error, 'DATABASE_ERROR')) return error.message;
    throw error;
  }
  throw new Error('expected DATABASE_ERROR');
}

describe('planMigrations', () => {
  const one = file('20260101000000_one');
  const two = file('20260201000000_two');
  const three = file('20260301000000_three');

  test('applies what is missing, in name order', () => {
    expect(planMigrations([one, two, three], []).pending).toEqual([one, two, three]);
    expect(planMigrations([one, two, three], [applied(one)]).pending).toEqual([two, three]);
    expect(planMigrations([one, two], [applied(one), applied(two)])).toEqual({
      pending: [],
      warnings: [],
    });
  });

  test('a rolled-back migration is applied again', () => {
    const rows = [applied(one), applied(two, { finishedAt: null, rolledBackAt: new Date() })];
    expect(planMigrations([one, two], rows).pending).toEqual([two]);
  });

  test('an unresolved failed migration blocks start-up', () => {
    const message = errorMessage(() =>
      planMigrations([one, two], [applied(one), applied(two, { finishedAt: null })]),
    );
    expect(message).toContain(two.name);
    expect(message).toContain('prisma migrate resolve');
  });

  test('a migration unknown here means a newer version migrated the database', () => {
    const message = errorMessage(() => planMigrations([one], [applied(one), applied(two)]));
    expect(message).toContain(two.name);
    expect(message).toContain('newer');
  });

  test('an edited migration is reported, a line-ending change is not', () => {
    const edited = {
      ...one,
      sql: one.sql + '-- note\n',
      checksum: migrationChecksum(one.sql + '-- note\n'),
    };
    expect(planMigrations([edited], [applied(one)]).warnings).toEqual([
      `migration ${one.name} was edited after it was applied (checksum differs)`,
    ]);
    const crlf = one.sql.replace(/\n/g, '\r\n');
    const converted = { ...one, sql: crlf, checksum: migrationChecksum(crlf) };
    expect(planMigrations([converted], [applied(one)]).warnings).toEqual([]);
  });
});

describe('migration files', () => {
  test('readMigrations reads folders with a migration.sql, sorted, with Prisma checksums', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-migrations-'));
    try {
      for (const name of ['20260201_b', '20260101_a']) {
        mkdirSync(join(dir, name));
        writeFileSync(join(dir, name, 'migration.sql'), `-- ${name}\n`);
      }
      mkdirSync(join(dir, 'not-a-migration'));
      writeFileSync(join(dir, 'migration_lock.toml'), 'provider = "sqlite"\n');
      expect(readMigrations(dir)).toEqual([
        {
          name: '20260101_a',
          sql: '-- 20260101_a\n',
          checksum: migrationChecksum('-- 20260101_a\n'),
        },
        {
          name: '20260201_b',
          sql: '-- 20260201_b\n',
          checksum: migrationChecksum('-- 20260201_b\n'),
        },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('checksum is the SHA-256 hex Prisma stores', () => {
    expect(migrationChecksum('')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  test('findMigrationsDir finds the committed folders from the sources', () => {
    expect(findMigrationsDir('sqlite')).toBe(join(ROOT, 'prisma/sqlite/migrations'));
    expect(findMigrationsDir('postgresql')).toBe(join(ROOT, 'prisma/postgresql/migrations'));
    expect(() => findMigrationsDir('sqlite', tmpdir())).toThrow(
      /cannot find the sqlite migrations/,
    );
  });
});

describe('the two schema flavours', () => {
  const models = (provider: string) => {
    const text = readFileSync(join(ROOT, `prisma/${provider}/schema.prisma`), 'utf8');
    const marker = text.indexOf('// ---- models');
    expect(marker).toBeGreaterThan(0);
    return text.slice(marker);
  };
  const migrationNames = (provider: string) =>
    readdirSync(join(ROOT, `prisma/${provider}/migrations`), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();

  test('declare identical models', () => {
    expect(models('postgresql')).toBe(models('sqlite'));
  });

  test('have the same migrations, one folder per change in each', () => {
    expect(migrationNames('sqlite').length).toBeGreaterThan(0);
    expect(migrationNames('postgresql')).toEqual(migrationNames('sqlite'));
  });

  test('PostgreSQL migrations never create schemas (the target schema comes from the URL)', () => {
    for (const name of migrationNames('postgresql')) {
      const sql = readFileSync(
        join(ROOT, 'prisma/postgresql/migrations', name, 'migration.sql'),
        'utf8',
      );
      expect(sql).not.toMatch(/CREATE SCHEMA/i);
    }
  });
});
