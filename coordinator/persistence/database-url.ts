import { userInfo } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CohortError } from '../../shared/errors';

/** A SQLite database file, the default that needs no service. */
export interface SqliteTarget {
  provider: 'sqlite';
  /** Absolute path of the database file. */
  path: string;
}

/** A PostgreSQL database and the schema Cohort's tables live in. */
export interface PostgresTarget {
  provider: 'postgresql';
  /**
   * Connection string for `pg`, without Prisma's own `schema` parameter. When the URL names
   * no user, the operating-system user is filled in as libpq (psql) does: `pg` looks only at
   * $PGUSER and $USER, and a service started without them would be refused.
   */
  connectionString: string;
  /** From `?schema=` (Prisma's convention), default `public`. */
  schema: string;
  /** The URL with its password hidden, for messages. */
  display: string;
}

/** Where a store lives, decided from the URL alone. */
export type DatabaseTarget = SqliteTarget | PostgresTarget;

const EXAMPLES = 'use file:./cohort.db (SQLite) or postgresql://user@host:5432/db';
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Reads a database URL the way users write it for Prisma: `file:PATH` for SQLite (relative
 * paths are relative to the working directory), `postgresql://` or `postgres://` for
 * PostgreSQL with an optional `?schema=NAME`. Anything else is refused with CONFIG_INVALID
 * before any connection is tried.
 */
export function parseDatabaseUrl(url: string, cwd: string = process.cwd()): DatabaseTarget {
  const trimmed = url.trim();
  if (/^file:/i.test(trimmed)) return { provider: 'sqlite', path: sqlitePath(trimmed, cwd) };
  if (/^postgres(ql)?:\/\//i.test(trimmed)) return postgresTarget(trimmed);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(trimmed)?.[1];
  throw new CohortError(
    'CONFIG_INVALID',
    scheme
      ? `unsupported database URL scheme "${scheme}:": ${EXAMPLES}`
      : `database URL "${trimmed}" has no scheme: ${EXAMPLES}`,
  );
}

/** Hides the password of a URL before it goes into a message or a log line. */
export function redactDatabaseUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^:/@?#]*):[^@/?#]*@/, '$1:***@');
}

function sqlitePath(url: string, cwd: string): string {
  const withoutQuery = url.replace(/[?#].*$/, '');
  let path: string;
  if (/^file:\/\//i.test(withoutQuery)) {
    try {
      path = fileURLToPath(withoutQuery);
    } catch (error) {
      throw new CohortError(
        'CONFIG_INVALID',
        `bad SQLite URL "${url}": ${(error as Error).message}`,
      );
    }
  } else {
    path = withoutQuery.slice('file:'.length);
  }
  if (path === '' || path === ':memory:') {
    throw new CohortError(
      'CONFIG_INVALID',
      `SQLite URL "${url}" names no file: the store must survive a restart, ${EXAMPLES}`,
    );
  }
  return isAbsolute(path) ? path : resolve(cwd, path);
}

function postgresTarget(url: string): PostgresTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CohortError('CONFIG_INVALID', `malformed PostgreSQL URL "${redactDatabaseUrl(url)}"`);
  }
  const schema = parsed.searchParams.get('schema') ?? 'public';
  if (!SCHEMA_NAME.test(schema)) {
    throw new CohortError(
      'CONFIG_INVALID',
      `PostgreSQL schema "${schema}" must be a plain identifier (letters, digits, underscore)`,
    );
  }
  parsed.searchParams.delete('schema');
  const urlNamesUser = parsed.username !== '' || parsed.searchParams.has('user');
  const envNamesUser = Boolean(process.env.PGUSER) || Boolean(process.env.USER);
  const osUser = urlNamesUser || envNamesUser ? undefined : operatingSystemUser();
  if (osUser !== undefined) {
    // A URL without a host (Unix socket via ?host=) cannot carry a user name before the host.
    if (parsed.hostname === '') parsed.searchParams.set('user', osUser);
    else parsed.username = encodeURIComponent(osUser);
  }
  return {
    provider: 'postgresql',
    connectionString: parsed.toString(),
    schema,
    display: redactDatabaseUrl(url),
  };
}

function operatingSystemUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}
