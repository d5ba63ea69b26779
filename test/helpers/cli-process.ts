import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The built CLI, exactly what the `cohort` bin runs. */
export const CLI_PATH = resolve(__dirname, '..', '..', 'dist', 'coordinator', 'cli', 'main.js');

/**
 * Fails with instructions when the CLI has not been built, instead of a spawn error that
 * points nowhere: the CLI tests run the compiled program, not the TypeScript sources.
 */
export function assertCliBuilt(): void {
  if (!existsSync(CLI_PATH)) {
    throw new Error(`${CLI_PATH} is missing: run \`npm run build\` before the CLI tests`);
  }
}

/**
 * The arguments of a `cohort coordinator` for a test: loopback, a free port, the mnist task,
 * and its database (`cohort.db`) and identity in `dir`; `flags` adds options or replaces
 * these (`{ '--rounds': 3 }`). Returns the database URL too, for reading back what it saved.
 */
export function coordinatorArgs(
  dir: string,
  flags: Readonly<Record<string, string | number>> = {},
): { args: string[]; database: string } {
  const all: Record<string, string | number> = {
    '--host': '127.0.0.1',
    '--port': 0,
    '--task': 'mnist',
    '--database': `file:${join(dir, 'cohort.db')}`,
    '--identity': join(dir, 'coordinator.json'),
    ...flags,
  };
  const args = ['coordinator', ...Object.entries(all).flatMap(([flag, v]) => [flag, String(v)])];
  return { args, database: String(all['--database']) };
}

/** How a CLI process ended, with everything it printed. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * A running `cohort ...` process whose output is captured as it arrives, so a test can wait
 * for a line (the coordinator's URL) and still read everything once it exits.
 */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<CliResult>;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly args: readonly string[],
    options: {
      cwd?: string;
      env?: NodeJS.ProcessEnv;
      /**
       * RLIMIT_FSIZE for the process, in KiB (`ulimit -f`): a write that would grow a file
       * past it fails with EFBIG (Node ignores SIGXFSZ), as a write to a full disk fails.
       */
      fileSizeLimitKb?: number;
    } = {},
  ) {
    const command = [CLI_PATH, ...args];
    const limit = options.fileSizeLimitKb;
    const [file, argv] =
      limit === undefined
        ? [process.execPath, command]
        : ['/bin/sh', ['-c', `ulimit -f ${limit} && exec "$0" "$@"`, process.execPath, ...command]];
    this.child = spawn(file, argv, {
      cwd: options.cwd ?? join(__dirname, '..', '..'),
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(this);
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      for (const listener of [...this.listeners]) listener();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      for (const listener of [...this.listeners]) listener();
    });
    this.exited = new Promise<CliResult>((resolveExit) => {
      this.child.once('close', (code, signal) => {
        running.delete(this);
        for (const listener of [...this.listeners]) listener();
        resolveExit({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  get hasExited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /**
   * Resolves with the first match of `pattern` in stdout; rejects with the output so far
   * when the process exits first or `timeoutMs` passes.
   */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise<RegExpMatchArray>((resolveMatch, reject) => {
      const finish = (error: Error | null, match?: RegExpMatchArray) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (error) reject(error);
        else resolveMatch(match!);
      };
      const check = () => {
        const match = pattern.exec(this.stdout);
        if (match) finish(null, match);
        else if (this.hasExited)
          finish(new Error(`exited before printing ${pattern}:\n${this.describe()}`));
      };
      const timer = setTimeout(
        () => finish(new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.describe()}`)),
        timeoutMs,
      );
      this.listeners.add(check);
      check();
    });
  }

  /** Waits for the exit, killing the process if it outlives `timeoutMs`. */
  async result(timeoutMs: number): Promise<CliResult> {
    let timer: NodeJS.Timeout | undefined;
    const killer = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.kill();
        reject(new Error(`still running after ${timeoutMs} ms, killed:\n${this.describe()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, killer]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL: tests never wait on a graceful shutdown they are not testing. */
  kill(): void {
    if (!this.hasExited) this.child.kill('SIGKILL');
  }

  /** The command and its output so far, for failure messages. */
  describe(): string {
    return `$ cohort ${this.args.join(' ')}\n--- stdout\n${this.stdout}--- stderr\n${this.stderr}`;
  }
}

const running = new Set<CliProcess>();

/** Runs `cohort ...args` to completion (killed after `timeoutMs`). */
export function runCli(
  args: readonly string[],
  timeoutMs = 60_000,
  cwd?: string,
): Promise<CliResult> {
  return new CliProcess(args, cwd !== undefined ? { cwd } : {}).result(timeoutMs);
}

/** Kills every CLI process a test started that is still running (call from afterEach). */
export async function killAllCliProcesses(): Promise<void> {
  const left = [...running];
  for (const process of left) process.kill();
  await Promise.all(left.map((p) => p.exited));
}

/**
 * Fails with the process's whole output unless it exited with `code` (0: a clean exit), so a
 * failing CLI test shows what the command printed.
 */
export function expectExit(result: CliResult, code: number, what: string): void {
  if (result.code !== code || result.signal !== null) {
    throw new Error(
      `${what} exited with ${result.code ?? result.signal}, expected ${code}\n` +
        `--- stdout\n${result.stdout}--- stderr\n${result.stderr}`,
    );
  }
}
