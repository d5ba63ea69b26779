/**
 * `npm run bench [-- <suite>] [--quick | --full] [--out DIR]`: runs benchmark suites, prints each
 * result as an aligned table on stdout (progress goes to stderr) and writes it as JSON with a
 * description of the machine, to `<out>/<suite>-<timestamp>.json` and `<suite>-latest.json`.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchSuite, SuiteResult } from './bench-types';
import { formatTable } from './format-table';
import { machineInfo } from './machine-info';
import { SUITES } from './suites';

/** Parsed command line. */
export interface BenchArgs {
  suites: string[];
  quick: boolean;
  /** Run every case of suites that trim their default grid (e.g. secagg). */
  full: boolean;
  out: string | null;
  /** `--threads N`: threads for the PyTorch reference (default: all cores). */
  threads: number;
  help: boolean;
}

/**
 * Parses `[suite...] [--quick] [--full] [--out DIR] [--threads N] [--help]`; throws on an
 * unknown suite or flag.
 */
export function parseBenchArgs(argv: string[], known: readonly string[]): BenchArgs {
  const args: BenchArgs = {
    suites: [],
    quick: false,
    full: false,
    out: null,
    threads: availableParallelism(),
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') args.quick = true;
    else if (arg === '--full') args.full = true;
    else if (arg === '--help' || arg === '-h') args.help = true;
    else if (arg === '--out' || arg.startsWith('--out=')) {
      const value = arg === '--out' ? argv[++i] : arg.slice('--out='.length);
      if (value === undefined || value === '') throw new Error('--out needs a directory');
      args.out = value;
    } else if (arg === '--threads' || arg.startsWith('--threads=')) {
      const value = arg === '--threads' ? argv[++i] : arg.slice('--threads='.length);
      const threads = Number(value);
      if (!Number.isInteger(threads) || threads < 1) {
        throw new Error('--threads needs a positive integer');
      }
      args.threads = threads;
    } else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`);
    else if (!known.includes(arg)) {
      throw new Error(`unknown suite '${arg}': expected one of ${known.join(', ')}`);
    } else if (!args.suites.includes(arg)) args.suites.push(arg);
  }
  if (args.suites.length === 0) args.suites = [...known];
  return args;
}

/** The directory holding package.json above `start` (the compiled file lives in dist/test/bench). */
export function findRepoRoot(start: string): string {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'shared'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

function usage(): string {
  const lines = Object.values(SUITES).map((s) => `  ${s.name.padEnd(12)} ${s.description}`);
  return [
    'usage: npm run bench [-- <suite>...] [--quick | --full] [--out DIR] [--threads N]',
    '',
    'suites (all of them when none is named):',
    ...lines,
    '',
    '  --quick     a much shorter run (smoke check; noisier numbers)',
    '  --full      every case, where a suite trims its default grid (slow)',
    '  --out DIR   where result JSON goes (default <repo>/bench-results)',
    '  --threads N threads for the PyTorch reference, recorded in every JSON (default: all',
    `              cores, ${availableParallelism()} here); Cohort's training uses 1 thread today`,
    '',
  ].join('\n');
}

function progress(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function writeResult(
  outDir: string,
  suite: BenchSuite,
  result: SuiteResult,
  meta: { startedAt: Date; seconds: number; quick: boolean; threads: number },
): string {
  mkdirSync(outDir, { recursive: true });
  const stamp = meta.startedAt.toISOString().replace(/[:.]/g, '-');
  const document = {
    suite: suite.name,
    description: suite.description,
    startedAt: meta.startedAt.toISOString(),
    durationSeconds: Math.round(meta.seconds * 10) / 10,
    quick: meta.quick,
    threads: meta.threads,
    machine: machineInfo(),
    columns: result.columns,
    rows: result.rows,
    notes: result.notes,
    details: result.details ?? {},
  };
  const text = `${JSON.stringify(document, null, 2)}\n`;
  const path = join(outDir, `${suite.name}-${stamp}.json`);
  writeFileSync(path, text);
  writeFileSync(join(outDir, `${suite.name}-latest.json`), text);
  return path;
}

async function main(argv: string[]): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(argv, Object.keys(SUITES));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usage()}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(usage());
    return 0;
  }
  const repoRoot = findRepoRoot(__dirname);
  const outDir = resolve(args.out ?? join(repoRoot, 'bench-results'));
  const machine = machineInfo();
  process.stdout.write(
    `Cohort bench: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, ` +
      `tfjs ${machine.tfjs}, --threads ${args.threads}${args.quick ? ' (quick)' : ''}\n`,
  );
  let failures = 0;
  for (const name of args.suites) {
    const suite = SUITES[name]!;
    const startedAt = new Date();
    const t0 = performance.now();
    progress(`${name}: start`);
    try {
      const result = await suite.run({
        quick: args.quick,
        full: args.full,
        threads: args.threads,
        repoRoot,
        progress,
      });
      const seconds = (performance.now() - t0) / 1000;
      const path = writeResult(outDir, suite, result, {
        startedAt,
        seconds,
        quick: args.quick,
        threads: args.threads,
      });
      progress(`${name}: done in ${seconds.toFixed(1)} s, wrote ${path}`);
      process.stdout.write(
        `\n## ${name}: ${suite.description}\n\n${formatTable(result.columns, result.rows)}\n`,
      );
      for (const note of result.notes) process.stdout.write(`\n- ${note}`);
      process.stdout.write(`\n- tfjs backend at the end: ${machineInfo().tfjsBackend ?? 'none'}\n`);
    } catch (error) {
      failures += 1;
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      process.stderr.write(`bench suite ${name} failed: ${message}\n`);
    }
  }
  return failures === 0 ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`bench failed: ${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
