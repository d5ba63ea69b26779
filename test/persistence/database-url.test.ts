import { userInfo } from 'node:os';
import { isCohortError } from '../../shared/errors';
import type { ErrorCode } from '../../shared/errors';
import { parseDatabaseUrl, redactDatabaseUrl } from '../../coordinator/persistence/database-url';
import { openStore } from '../../coordinator/persistence/store';

function codeOf(run: () => unknown): ErrorCode | 'none' {
  try {
    run();
  } catch (error) {
    if (isCohortError(error)) return error.code;
    throw error;
  }
  return 'none';
}

async function asyncCodeOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (isCohortError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  return { code: 'none', message: '' };
}

describe('parseDatabaseUrl', () => {
  test('SQLite file: URLs, relative to the working directory', () => {
    expect(parseDatabaseUrl('file:./cohort.db', '/srv/app')).toEqual({
      provider: 'sqlite',
      path: '/srv/app/cohort.db',
    });
    expect(parseDatabaseUrl('file:data/c.db?connection_limit=1', '/srv')).toEqual({
      provider: 'sqlite',
      path: '/srv/data/c.db',
    });
    expect(parseDatabaseUrl('file:/var/lib/cohort.db', '/srv')).toEqual({
      provider: 'sqlite',
      path: '/var/lib/cohort.db',
    });
    expect(parseDatabaseUrl('file:///var/lib/cohort%20x.db', '/srv')).toEqual({
      provider: 'sqlite',
      path: '/var/lib/cohort x.db',
    });
  });

  test('refuses SQLite URLs that name no durable file', () => {
    expect(codeOf(() => parseDatabaseUrl('file:'))).toBe('CONFIG_INVALID');
    expect(codeOf(() => parseDatabaseUrl('file::memory:'))).toBe('CONFIG_INVALID');
  });

  test('PostgreSQL URLs: schema parameter taken out, other parameters kept', () => {
    const target = parseDatabaseUrl(
      'postgres://alice:s3cret@db.example:6543/fl?sslmode=require&schema=cohort_a',
    );
    expect(target).toEqual({
      provider: 'postgresql',
      connectionString: 'postgres://alice:s3cret@db.example:6543/fl?sslmode=require',
      schema: 'cohort_a',
      display: 'postgres://alice:***@db.example:6543/fl?sslmode=require&schema=cohort_a',
    });
    expect(parseDatabaseUrl('postgresql://bob@h/db')).toMatchObject({
      connectionString: 'postgresql://bob@h/db',
      schema: 'public',
    });
    expect(codeOf(() => parseDatabaseUrl('postgresql://h/db?schema=x;drop'))).toBe(
      'CONFIG_INVALID',
    );
  });

  describe('without a user in the URL or the environment', () => {
    const saved = { USER: process.env.USER, PGUSER: process.env.PGUSER };
    beforeEach(() => {
      delete process.env.USER;
      delete process.env.PGUSER;
    });
    afterEach(() => {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    });

    test('connects as the operating-system user, as psql does', () => {
      const user = encodeURIComponent(userInfo().username);
      expect(parseDatabaseUrl('postgresql://127.0.0.1:5432/test')).toMatchObject({
        connectionString: `postgresql://${user}@127.0.0.1:5432/test`,
      });
      const socket = parseDatabaseUrl('postgresql:///test?host=/var/run/postgresql');
      expect(
        new URL((socket as { connectionString: string }).connectionString).searchParams.get('user'),
      ).toBe(userInfo().username);
    });

    test('leaves the URL alone when $PGUSER names the user', () => {
      process.env.PGUSER = 'someone';
      expect(parseDatabaseUrl('postgresql://127.0.0.1:5432/test')).toMatchObject({
        connectionString: 'postgresql://127.0.0.1:5432/test',
      });
    });
  });

  test('refuses unknown schemes and scheme-less strings with CONFIG_INVALID', () => {
    for (const url of ['mysql://h/db', 'http://h/db', 'cohort.db', 'sqlite:./x.db', '']) {
      expect(codeOf(() => parseDatabaseUrl(url))).toBe('CONFIG_INVALID');
    }
  });

  test('redacts passwords and nothing else', () => {
    expect(redactDatabaseUrl('postgresql://u:p%40ss@h:1/db')).toBe('postgresql://u:***@h:1/db');
    expect(redactDatabaseUrl('postgresql://u@h/db')).toBe('postgresql://u@h/db');
    expect(redactDatabaseUrl('file:./cohort.db')).toBe('file:./cohort.db');
  });
});

describe('openStore refusals', () => {
  test('unknown scheme: CONFIG_INVALID before any connection', async () => {
    expect((await asyncCodeOf(openStore('mysql://root@localhost/cohort'))).code).toBe(
      'CONFIG_INVALID',
    );
  });

  test('bad keepCheckpoints: CONFIG_INVALID', async () => {
    expect((await asyncCodeOf(openStore('file:./never.db', { keepCheckpoints: 0 }))).code).toBe(
      'CONFIG_INVALID',
    );
  });

  test('unreachable PostgreSQL: DATABASE_ERROR naming where, without the password', async () => {
    const { code, message } = await asyncCodeOf(
      openStore('postgresql://cohort:topsecret@127.0.0.1:1/cohort'),
    );
    expect(code).toBe('DATABASE_ERROR');
    expect(message).toContain('127.0.0.1:1');
    expect(message).toContain('ECONNREFUSED');
    expect(message).not.toContain('topsecret');
  });
});
