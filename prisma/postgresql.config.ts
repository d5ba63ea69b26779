/**
 * Prisma CLI configuration for the PostgreSQL flavour. Prisma 6 works offline only with its
 * JavaScript engine and a driver adapter, so every CLI call names this file:
 *
 *   npx prisma generate --config prisma/postgresql.config.ts
 *   COHORT_DATABASE_URL=postgresql://user@host/db npx prisma migrate diff --config ...
 *
 * COHORT_DATABASE_URL is read exactly as the coordinator reads --database (including
 * `?schema=`). `prisma migrate deploy` does not work here (prisma/orm#27403): the coordinator
 * applies the migrations itself at start-up. See prisma/README.md.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { defineConfig } from 'prisma/config';
import { parseDatabaseUrl } from '../coordinator/persistence/database-url';

export default defineConfig({
  schema: 'postgresql/schema.prisma',
  experimental: { adapter: true },
  engine: 'js',
  adapter: () => {
    const target = parseDatabaseUrl(
      process.env.COHORT_DATABASE_URL ?? 'postgresql://127.0.0.1:5432/cohort',
    );
    if (target.provider !== 'postgresql') {
      throw new Error('COHORT_DATABASE_URL must be a postgresql:// URL with this config');
    }
    return Promise.resolve(
      new PrismaPg(
        // Without allowExitOnIdle the CLI waits for the pool's idle timeout before exiting.
        { connectionString: target.connectionString, allowExitOnIdle: true },
        { schema: target.schema },
      ),
    );
  },
});
