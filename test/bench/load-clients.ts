/**
 * The simulated clients of the "load" bench: each a real socket.io-client connection with its
 * own freshly generated Ed25519 identity, registering and answering through the platform-free
 * ClientSession exactly as `cohort client` does (websocket transport, reconnection with
 * backoff, the honest SecAggSubmission doing the real crypto of every secure phase). Only
 * training is faked (load-trainer.ts). They all live in the bench process; the coordinator
 * lives in its own, so the two never share an event loop.
 */
import { performance } from 'node:perf_hooks';
import { io } from 'socket.io-client';
import type { ClientSession, ClientSocket, ClientState } from '../../shared/client/client-session';
import { openClientSession } from '../../shared/client/open-session';
import { SecAggSubmission } from '../../shared/client/secure-submission';
import { generateIdentity } from '../../shared/identity';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import type { FitRecord } from './load-trainer';
import { LoadTrainer } from './load-trainer';

/** States in which a session has registered on its current connection. */
const REGISTERED: ReadonlySet<ClientState> = new Set([
  'idle',
  'training',
  'submitting',
  'evaluating',
]);
/** After this many clients failed to register, growing stops (the coordinator is saturated). */
const MAX_FAILURES = 10;

interface LoadClient {
  session: ClientSession;
  registered: boolean;
  lastLog: string;
}

/** How growing the fleet went. */
export interface GrowResult {
  /** Registered clients once growing ended. */
  registered: number;
  seconds: number;
  /** Why clients failed to register (the first few); empty when all did. */
  failures: string[];
}

/** A growing set of simulated clients connected to one coordinator. */
export class LoadClientFleet {
  private readonly clients: LoadClient[] = [];
  /** Fits answered, by round number. */
  private readonly fits = new Map<number, FitRecord[]>();

  private constructor(
    private readonly url: string,
    private readonly task: string,
    private readonly modelSpecHash: string,
  ) {}

  static async create(url: string, task: string): Promise<LoadClientFleet> {
    return new LoadClientFleet(url, task, await specHash(getModelSpec(task)));
  }

  /** Clients started so far (registered or not). */
  get size(): number {
    return this.clients.length;
  }

  /** Clients registered on their current connection. */
  get registered(): number {
    return this.clients.filter((c) => c.registered).length;
  }

  /** The fits clients answered in `round` (what their trainers returned). */
  fitsOf(round: number): readonly FitRecord[] {
    return this.fits.get(round) ?? [];
  }

  /**
   * Starts clients until `target` exist, `concurrency` registrations in flight at a time;
   * each must register within `timeoutMs`. Stops early after MAX_FAILURES failures.
   */
  async grow(
    target: number,
    options: { concurrency: number; timeoutMs: number; progress?(registered: number): void },
  ): Promise<GrowResult> {
    const t0 = performance.now();
    const failures: string[] = [];
    let next = this.clients.length;
    let lastReport = performance.now();
    const worker = async () => {
      while (next < target && failures.length < MAX_FAILURES) {
        const index = next++;
        try {
          await this.connectOne(index, options.timeoutMs);
        } catch (error) {
          failures.push(error instanceof Error ? error.message : String(error));
        }
        if (options.progress && performance.now() - lastReport > 5_000) {
          lastReport = performance.now();
          options.progress(this.registered);
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    return {
      registered: this.registered,
      seconds: (performance.now() - t0) / 1000,
      failures,
    };
  }

  /** Closes every client for good (no reconnection). Idempotent. */
  close(): void {
    for (const client of this.clients) client.session.close();
  }

  private connectOne(index: number, timeoutMs: number): Promise<void> {
    const identity = generateIdentity();
    const socket: ClientSocket = io(this.url, {
      autoConnect: false,
      forceNew: true,
      transports: ['websocket'],
      reconnection: true,
      reconnectionDelay: 1_000,
      reconnectionDelayMax: 5_000,
      randomizationFactor: 0.5,
      timeout: 60_000,
    });
    const trainer = new LoadTrainer(
      index,
      { task: this.task, modelSpecHash: this.modelSpecHash },
      (round, fit) => {
        const list = this.fits.get(round) ?? [];
        list.push(fit);
        this.fits.set(round, list);
      },
    );
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error: Error | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) {
          client.session.close();
          reject(error);
        } else resolve();
      };
      const client: LoadClient = {
        registered: false,
        lastLog: '',
        session: openClientSession(socket, trainer, {
          identity,
          platform: 'node',
          secure: new SecAggSubmission({ identity }),
          events: {
            onState: (state) => {
              client.registered = REGISTERED.has(state);
              if (client.registered) settle(null);
            },
            onLog: (line) => {
              client.lastLog = line;
            },
          },
        }),
      };
      this.clients.push(client);
      client.session.finished.catch((error: unknown) =>
        settle(error instanceof Error ? error : new Error(String(error))),
      );
      const timer = setTimeout(() => {
        const why = client.lastLog === '' ? 'no log line' : `last: ${client.lastLog}`;
        settle(new Error(`client ${index} did not register within ${timeoutMs} ms (${why})`));
      }, timeoutMs);
      socket.on('connect_error', (error) => {
        client.lastLog = `connect_error: ${error.message}`;
      });
      socket.connect();
    });
  }
}
