import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

/** The repository root, where the Prisma configs are resolved from. */
export const ROOT = resolve(__dirname, '../..');

/**
 * Runs the project's Prisma CLI (offline, JavaScript engine) with one of the prisma/*.config.ts
 * files and COHORT_DATABASE_URL for its driver adapter; resolves with stdout.
 */
export async function runPrismaCli(
  args: string[],
  provider: 'sqlite' | 'postgresql',
  databaseUrl: string,
): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      join(ROOT, 'node_modules/prisma/build/index.js'),
      ...args,
      '--config',
      `prisma/${provider}.config.ts`,
    ],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        COHORT_DATABASE_URL: databaseUrl,
        CI: 'true',
        PRISMA_HIDE_UPDATE_MESSAGE: '1',
      },
    },
  );
  return stdout;
}

/**
 * The SQL Prisma would write today to create the whole schema from nothing: what the committed
 * migrations must add up to.
 */
export async function schemaFromNothing(
  provider: 'sqlite' | 'postgresql',
  databaseUrl: string,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-diff-'));
  try {
    const output = join(dir, 'schema.sql');
    await runPrismaCli(
      [
        'migrate',
        'diff',
        '--from-empty',
        '--to-schema-datamodel',
        `prisma/${provider}/schema.prisma`,
        '--script',
        '--output',
        output,
      ],
      provider,
      databaseUrl,
    );
    return readFileSync(output, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
