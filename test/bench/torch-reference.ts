/**
 * Runs the PyTorch reference trainer (../shared/bench/torch_reference.py) on the same model
 * spec, batch size and thread count as Cohort's loop, in the same run, so the ratio between
 * the two is measured on the same machine under the same load.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ModelSpec } from '../../shared/model/spec';

/** Torch training settings; `images` random images trained for `epochs` after a warm-up epoch. */
export interface TorchRunOptions {
  threads: number;
  batch: number;
  images: number;
  epochs: number;
  /** Give up after this long (default 10 minutes). */
  timeoutMs?: number;
}

/** A torch measurement, or why there is none (script or PyTorch missing, failure). */
export type TorchOutcome =
  | { ok: true; imgPerSec: number; params: number; threads: number; torchVersion: string }
  | { ok: false; reason: string };

/** Where the reference script and interpreter are; null script when it is not next to the repo. */
export interface TorchReference {
  script: string | null;
  python: string;
}

/**
 * Finds the reference script next to the repository (`<repo>/../shared/bench`) and the Python
 * that has PyTorch: $COHORT_BENCH_PYTHON, else Debian's /usr/bin/python3 (where
 * `apt-get install python3-torch` puts it), else `python3` on the PATH.
 */
export function locateTorchReference(repoRoot: string): TorchReference {
  const script = resolve(repoRoot, '..', 'shared', 'bench', 'torch_reference.py');
  const fromEnv = process.env.COHORT_BENCH_PYTHON;
  const python =
    fromEnv !== undefined && fromEnv !== ''
      ? fromEnv
      : existsSync('/usr/bin/python3')
        ? '/usr/bin/python3'
        : 'python3';
  return { script: existsSync(script) ? script : null, python };
}

/** Trains `spec` with PyTorch and returns its images/second, or the reason it could not. */
export async function runTorchReference(
  reference: TorchReference,
  spec: ModelSpec,
  options: TorchRunOptions,
): Promise<TorchOutcome> {
  if (reference.script === null) {
    return { ok: false, reason: 'torch_reference.py not found in ../shared/bench' };
  }
  const dir = mkdtempSync(join(tmpdir(), 'cohort-bench-'));
  try {
    const specPath = join(dir, 'spec.json');
    writeFileSync(specPath, JSON.stringify(spec));
    const args = [
      reference.script,
      specPath,
      ...['--threads', String(options.threads), '--batch', String(options.batch)],
      ...['--images', String(options.images), '--epochs', String(options.epochs)],
    ];
    const { stdout, stderr, error } = await execute(
      reference.python,
      args,
      options.timeoutMs ?? 600_000,
    );
    if (error !== null) return { ok: false, reason: describeFailure(reference, stderr, error) };
    return parseTorchOutput(stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads the script's JSON line (the last line that parses as an object with imgPerSec). */
export function parseTorchOutput(stdout: string): TorchOutcome {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const value = JSON.parse(line) as Record<string, unknown>;
      if (typeof value.imgPerSec === 'number') {
        return {
          ok: true,
          imgPerSec: value.imgPerSec,
          params: Number(value.params),
          threads: Number(value.threads),
          torchVersion: String(value.torch),
        };
      }
    } catch {
      // not the result line
    }
  }
  return { ok: false, reason: `no result line in torch output: ${stdout.slice(0, 200)}` };
}

function describeFailure(reference: TorchReference, stderr: string, error: Error): string {
  if (/No module named ['"]?torch/.test(stderr)) {
    return `PyTorch is not installed for ${reference.python} (apt-get install -y python3-torch)`;
  }
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
    return `${reference.python} not found (set COHORT_BENCH_PYTHON)`;
  }
  const lastLine = stderr.trim().split('\n').pop() ?? '';
  return `torch reference failed: ${lastLine || error.message}`;
}

function execute(
  command: string,
  args: string[],
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string; error: Error | null }> {
  return new Promise((done) => {
    execFile(command, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      done({ stdout, stderr, error });
    });
  });
}
