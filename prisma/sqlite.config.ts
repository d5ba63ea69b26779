/**
 * Prisma CLI configuration for the SQLite flavour (the default store). Prisma 6 works offline
 * only with its JavaScript engine and a driver adapter, so every CLI call names this file:
 *
 *   npx prisma generate --config prisma/sqlite.config.ts
 *   COHORT_DATABASE_URL=file:./cohort.db npx prisma migrate status --config prisma/sqlite.config.ts
 *
 * COHORT_DATABASE_URL is read exactly as the coordinator reads --database (relative paths are
 * relative to the working directory). Unset, the CLI gets a throw-away in-memory database, so
 * `generate` and `migrate diff` leave no stray file behind. See prisma/README.md.
 */
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';
import { defineConfig } from 'prisma/config';
import { parseDatabaseUrl } from '../coordinator/persistence/database-url';

export default defineConfig({
  schema: 'sqlite/schema.prisma',
  experimental: { adapter: true },
  engine: 'js',
  adapter: () => {
    const url = process.env.COHORT_DATABASE_URL;
    if (!url) return Promise.resolve(new PrismaBetterSQLite3({ url: ':memory:' }));
    const target = parseDatabaseUrl(url);
    if (target.provider !== 'sqlite') {
      throw new Error('COHORT_DATABASE_URL must be a file: URL with prisma/sqlite.config.ts');
    }
    return Promise.resolve(new PrismaBetterSQLite3({ url: `file:${target.path}` }));
  },
});
