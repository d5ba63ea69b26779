/* eslint-disable no-console -- a command-line report */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { MutationModule } from './modules';
import { MUTATION_MODULES } from './modules';
import { summarizeMutants } from './score';
import type { MutantOutcome, ModuleScore } from './score';
import { formatScoreTable } from './score';

/**
 * `npm run mutation [-- <module>...] [--concurrency N]`: runs StrykerJS once per module of
 * {@link MUTATION_MODULES} with that module's own test files, and prints (and writes to
 * reports/mutation/summary.{json,md}) the score per module next to its target, plus every
 * surviving mutant so it can be killed by a test or marked equivalent in the source
 * (`// Stryker disable next-line <mutator>: <why>`). Runs are incremental per module: a rerun
 * tests only the mutants whose code or covering tests changed.
 */

const ROOT = resolve(__dirname, '..', '..', '..');
const REPORT_DIR = join(ROOT, 'reports', 'mutation');

interface Args {
  modules: readonly MutationModule[];
  concurrency: number;
}

function parseArgs(argv: readonly string[]): Args {
  let concurrency = 2;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      console.log(
        [
          'Usage: npm run mutation -- [module...] [--concurrency N]',
          '',
          'Mutation testing (StrykerJS) of the core, one run per module. Modules:',
          ...MUTATION_MODULES.map((m) => `  ${m.name.padEnd(28)} target ${m.target}%`),
        ].join('\n'),
      );
      process.exit(0);
    } else if (arg === '--concurrency') {
      concurrency = Number(argv[++i]);
      if (!Number.isInteger(concurrency) || concurrency < 1) {
        throw new Error('--concurrency expects a positive integer');
      }
    } else {
      names.push(arg);
    }
  }
  const unknown = names.filter((n) => !MUTATION_MODULES.some((m) => m.name === n));
  if (unknown.length > 0) {
    throw new Error(
      `unknown module ${unknown.join(', ')}; one of: ${MUTATION_MODULES.map((m) => m.name).join(', ')}`,
    );
  }
  const modules =
    names.length === 0 ? MUTATION_MODULES : MUTATION_MODULES.filter((m) => names.includes(m.name));
  return { modules, concurrency };
}

function slug(name: string): string {
  return name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '');
}

/** The StrykerJS options for one module: its files, its tests, its own incremental file. */
function strykerOptions(module: MutationModule, concurrency: number): Record<string, unknown> {
  const dir = join('reports', 'mutation', slug(module.name));
  return {
    packageManager: 'npm',
    testRunner: 'jest',
    jest: {
      projectType: 'custom',
      configFile: 'jest.config.js',
      config: { testMatch: module.tests.map((t) => `<rootDir>/${t}`), reporters: [] },
      enableFindRelatedTests: false,
    },
    plugins: ['@stryker-mutator/*', join(__dirname, 'ignore-messages.js')],
    ignorers: ['error-and-log-messages'],
    checkers: ['typescript'],
    tsconfigFile: 'tsconfig.json',
    coverageAnalysis: 'perTest',
    mutate: module.mutate,
    ignorePatterns: ['dist', 'reports', 'coverage', 'bench-results', '.cohort', '*.db'],
    ignoreStatic: true,
    incremental: true,
    // Committed, so that a rerun (here, in a later session or in CI) tests only what changed.
    incrementalFile: join('test', 'mutation', 'incremental', `${slug(module.name)}.json`),
    reporters: ['progress', 'html', 'json'],
    htmlReporter: { fileName: join(dir, 'index.html') },
    jsonReporter: { fileName: join(dir, 'mutation.json') },
    concurrency,
    dryRunTimeoutMinutes: 30,
    // Generous: on a loaded 2-core machine a slow run must not pass for an infinite loop.
    timeoutFactor: 4,
    timeoutMS: 20_000,
    tempDirName: '.stryker-tmp',
    cleanTempDir: 'always',
    logLevel: 'warn',
  };
}

/**
 * Writes reports/mutation/summary.{json,md}: this run's scores, and earlier results of the
 * modules it left out, in the modules' order. Returns the table.
 */
function writeSummary(scores: readonly ModuleScore[]): string {
  const summaryPath = join(REPORT_DIR, 'summary.json');
  const earlier = existsSync(summaryPath)
    ? (JSON.parse(readFileSync(summaryPath, 'utf8')) as ModuleScore[])
    : [];
  const merged = MUTATION_MODULES.flatMap((m) => {
    const score =
      scores.find((s) => s.module === m.name) ?? earlier.find((s) => s.module === m.name);
    return score ? [score] : [];
  });
  const table = formatScoreTable(merged);
  writeFileSync(summaryPath, `${JSON.stringify(merged, null, 2)}\n`);
  writeFileSync(join(REPORT_DIR, 'summary.md'), `${table}\n`);
  return table;
}

async function main(): Promise<void> {
  const { modules, concurrency } = parseArgs(process.argv.slice(2));
  // StrykerJS is an ES module; this program is CommonJS.
  const { Stryker } = await import('@stryker-mutator/core');
  process.chdir(ROOT);
  mkdirSync(REPORT_DIR, { recursive: true });
  const scores: ModuleScore[] = [];
  for (const module of modules) {
    console.log(`\n== ${module.name}: mutating ${module.mutate.join(' ')}`);
    console.log(`   judged by ${module.tests.length} test file(s): ${module.tests.join(', ')}`);
    const started = Date.now();
    const results = await new Stryker(strykerOptions(module, concurrency)).runMutationTest();
    const outcomes: MutantOutcome[] = results.map((r) => ({
      file: r.fileName.startsWith(ROOT) ? r.fileName.slice(ROOT.length + 1) : r.fileName,
      line: r.location.start.line,
      column: r.location.start.column,
      mutator: r.mutatorName,
      replacement: r.replacement ?? '',
      status: r.status,
      reason: r.statusReason ?? '',
    }));
    const score = summarizeMutants(module, outcomes, (Date.now() - started) / 1000);
    scores.push(score);
    console.log(`\n${formatScoreTable([score])}`);
    for (const s of score.survivors) console.log(`   survived: ${s}`);
    // After every module, so an interrupted run keeps what it finished.
    writeSummary(scores);
  }
  console.log(
    `\n${writeSummary(scores)}\n\nreports: ${REPORT_DIR}/<module>/index.html, summary.json, summary.md`,
  );
  if (scores.some((s) => s.score !== null && s.score < s.target)) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
});
