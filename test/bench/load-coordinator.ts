/**
 * The bench side of the "load" coordinator process: forks load-coordinator-process.js (with
 * --expose-gc, so memory is read after a full collection), sends it requests over IPC and
 * waits for their answers with a deadline. `close()` stops the coordinator and, if it does not
 * exit in time, kills it: a failed or timed-out step must never leave a process behind.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import type {
  CoordinatorStats,
  LoadRequest,
  LoadResponse,
  RoundReport,
  StartedCoordinator,
  StatsWindowName,
} from './load-ipc';

/** The compiled entry, next to this file in dist/test/bench. */
const ENTRY = join(__dirname, 'load-coordinator-process.js');
/** How long start-up (database migration, model build, listen) may take. */
const START_TIMEOUT_MS = 60_000;
const STATS_TIMEOUT_MS = 30_000;
/** How long a stopping coordinator gets before it is killed. */
const EXIT_TIMEOUT_MS = 10_000;
/** Characters of the child's output kept for error messages. */
const OUTPUT_TAIL = 4_000;

type Pending = { resolve(value: unknown): void; reject(error: Error): void; timer: NodeJS.Timeout };

/** A request without its id (the handle numbers them). */
type Body<T extends LoadRequest = LoadRequest> = T extends unknown ? Omit<T, 'id'> : never;

/** A coordinator running in its own process, driven by the load bench. */
export class LoadCoordinator {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private output = '';
  private exit: string | null = null;
  private readonly exited: Promise<void>;

  private started: StartedCoordinator | null = null;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.attach();
  }

  /** Forks the process and starts a coordinator in it with `config`. */
  static async start(config: CoordinatorConfigInput): Promise<LoadCoordinator> {
    const child = fork(ENTRY, [], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    const handle = new LoadCoordinator(child);
    try {
      handle.started = await handle.request<StartedCoordinator>(
        { type: 'start', config },
        START_TIMEOUT_MS,
      );
      return handle;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Where clients connect. */
  get url(): string {
    if (!this.started) throw new Error('the coordinator has not started');
    return this.started.url;
  }

  /** Runs one round; rejects if none ends within `timeoutMs` (or the process dies). */
  round(timeoutMs: number): Promise<RoundReport> {
    // The process enforces the deadline; this one only catches a process that stopped answering.
    return this.request<RoundReport>({ type: 'round', timeoutMs }, timeoutMs + 15_000);
  }

  /** The coordinator's costs in `window` since its last reset; `reset` opens a new one. */
  stats(window: StatsWindowName, reset: boolean): Promise<CoordinatorStats> {
    return this.request<CoordinatorStats>({ type: 'stats', window, reset }, STATS_TIMEOUT_MS);
  }

  /** Why the process ended, when it did ('exit code 1' ...); null while it runs. */
  get exitReason(): string | null {
    return this.exit;
  }

  /** The last lines the process printed (for failure reports). */
  get outputTail(): string {
    return this.output;
  }

  /** Stops the coordinator and waits for the process to end; kills it if it will not. */
  async close(): Promise<void> {
    if (this.exit === null && this.child.connected) {
      await this.request({ type: 'stop' }, EXIT_TIMEOUT_MS).catch(() => undefined);
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  private attach(): void {
    const keep = (chunk: string) => {
      this.output = (this.output + chunk).slice(-OUTPUT_TAIL);
    };
    this.child.stdout!.setEncoding('utf8').on('data', keep);
    this.child.stderr!.setEncoding('utf8').on('data', keep);
    this.child.on('message', (raw: LoadResponse) => {
      const waiting = this.pending.get(raw.id);
      if (!waiting) return;
      this.pending.delete(raw.id);
      clearTimeout(waiting.timer);
      if (raw.ok) waiting.resolve(raw.value);
      else waiting.reject(new Error(raw.error));
    });
    this.child.once('exit', (code, signal) => {
      this.exit = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
      for (const [id, waiting] of this.pending) {
        this.pending.delete(id);
        clearTimeout(waiting.timer);
        waiting.reject(new Error(`the coordinator process ended (${this.exit})${this.tail()}`));
      }
    });
  }

  private tail(): string {
    const text = this.output.trim();
    return text === '' ? '' : `\nits last output:\n${text.slice(-1_000)}`;
  }

  private request<T>(body: Body, timeoutMs: number): Promise<T> {
    if (this.exit !== null) {
      return Promise.reject(new Error(`the coordinator process has ended (${this.exit})`));
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the coordinator process did not answer ${body.type} in time`));
      }, timeoutMs);
      this.pending.set(id, { resolve: (value) => resolve(value as T), reject, timer });
      const request: LoadRequest = { ...body, id };
      this.child.send(request);
    });
  }
}
