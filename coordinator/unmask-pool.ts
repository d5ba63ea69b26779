/**
 * Unmasking on worker threads. The coordinator's cost in a large secure round is expanding
 * the masks: one self mask per survivor plus one pairwise mask per (dropped client, surviving
 * neighbour), each as long as the model (100 clients with 30% dropout at 1.2M parameters:
 * about 2,100 masks, several CPU-seconds). Addition mod 2^32 commutes, and AES-CTR can start
 * at any block, so each worker expands every mask over its own slice of the vector and the
 * slices are added into the accumulator at the end: the same sum, bit for bit, in a fraction
 * of the wall time.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CohortError } from '../shared/errors';
import type { MaskRemover, MaskTerm } from '../shared/secagg';
import { SEED_LENGTH, removeMasksInline, wrapAddInto } from '../shared/secagg';
import type { SliceRequest, SliceResponse } from './unmask-slice-messages';

/** Below this many elements a vector is not worth a thread: masks are removed inline. */
export const MIN_PARALLEL_ELEMENTS = 1 << 16;

/** Options of {@link UnmaskWorkerPool}. */
export interface UnmaskPoolOptions {
  /** Worker threads; 0 removes masks on the calling thread. Default: every core. */
  threads?: number;
  /** The compiled worker; default: unmask-worker.js beside this module (or in dist/). */
  workerScript?: string;
  /** Told once when the worker script cannot be found and unmasking runs inline. */
  onFallback?(reason: string): void;
}

interface Pending {
  resolve(response: SliceResponse): void;
  reject(error: Error): void;
}

/** One worker and the requests it has not answered yet. */
class SliceWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  dead = false;

  constructor(script: string) {
    this.worker = new Worker(script);
    this.worker.on('message', (response: SliceResponse) => {
      const waiter = this.pending.get(response.id);
      this.pending.delete(response.id);
      this.holdProcessWhileBusy();
      waiter?.resolve(response);
    });
    this.worker.on('error', (error) => this.fail(`unmask worker failed: ${error.message}`));
    this.worker.on('exit', (code) => this.fail(`unmask worker exited with code ${code}`));
    this.holdProcessWhileBusy(); // after the listeners: adding one refs the worker again
  }

  run(request: Omit<SliceRequest, 'id'>): Promise<SliceResponse> {
    const id = this.nextId++;
    return new Promise<SliceResponse>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.holdProcessWhileBusy();
      this.worker.postMessage({ ...request, id }, [request.seeds.buffer, request.signs.buffer]);
    });
  }

  async terminate(): Promise<void> {
    this.dead = true;
    await this.worker.terminate();
  }

  private fail(message: string): void {
    this.dead = true;
    const error = new CohortError('INTERNAL', message);
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  /** An idle worker never keeps a finished process alive; one with work to answer does. */
  private holdProcessWhileBusy(): void {
    if (this.pending.size > 0) this.worker.ref();
    else this.worker.unref();
  }
}

/**
 * A fixed set of worker threads that remove masks slice by slice. Workers start on first use
 * and are replaced if one dies; a slice that fails leaves the accumulator untouched (slices
 * are added only once all have arrived) and the round fails with INTERNAL.
 */
export class UnmaskWorkerPool {
  private readonly workers: (SliceWorker | undefined)[];
  private readonly script: string | undefined;
  private closed = false;

  constructor(options: UnmaskPoolOptions = {}) {
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 0) {
      throw new CohortError('CONFIG_INVALID', `unmask threads must be >= 0, got ${threads}`);
    }
    this.script = threads > 0 ? (options.workerScript ?? defaultWorkerScript()) : undefined;
    if (threads > 0 && this.script === undefined) {
      options.onFallback?.('the compiled unmask worker was not found; unmasking runs inline');
    }
    this.workers = new Array<SliceWorker | undefined>(this.script === undefined ? 0 : threads);
  }

  /** Worker threads masks are spread over (0: inline). */
  get threads(): number {
    return this.workers.length;
  }

  /** The {@link MaskRemover} to hand to a secure round. */
  readonly removeMasks: MaskRemover = async (accumulator, terms) => {
    if (this.closed) throw new CohortError('INTERNAL', 'the unmask pool is closed');
    const small = accumulator.length < MIN_PARALLEL_ELEMENTS;
    if (terms.length === 0 || this.workers.length === 0 || small) {
      await removeMasksInline(accumulator, terms);
      return;
    }
    // Even one worker helps: the event loop keeps serving sockets while masks expand.
    const slices = sliceBounds(accumulator.length, this.workers.length);
    const responses = await Promise.all(
      slices.map(({ start, length }, i) =>
        this.worker(i).run({ start, length, ...packTerms(terms) }),
      ),
    );
    for (const [i, response] of responses.entries()) {
      if (!response.ok) {
        throw new CohortError('INTERNAL', `unmasking a slice failed: ${response.message}`);
      }
      wrapAddInto(accumulator, slices[i]!.start, response.sum, 1);
    }
  };

  /** Stops every worker; later calls to removeMasks fail. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map(async (w) => w?.terminate()));
  }

  private worker(index: number): SliceWorker {
    let worker = this.workers[index];
    if (!worker || worker.dead) {
      worker = new SliceWorker(this.script!);
      this.workers[index] = worker;
    }
    return worker;
  }
}

/**
 * Splits `length` elements into at most `parts` contiguous slices, each starting at a multiple
 * of 4 (an AES block) and, when there are several, at least about {@link MIN_PARALLEL_ELEMENTS}
 * long. Pure, for tests.
 */
export function sliceBounds(length: number, parts: number): { start: number; length: number }[] {
  const usable = Math.max(1, Math.min(parts, Math.floor(length / MIN_PARALLEL_ELEMENTS)));
  const step = Math.ceil(length / usable / 4) * 4;
  const slices: { start: number; length: number }[] = [];
  for (let start = 0; start < length; start += step) {
    slices.push({ start, length: Math.min(step, length - start) });
  }
  return slices;
}

/** A copy of the terms for one worker: seeds concatenated, signs as bytes (both transferred). */
function packTerms(terms: readonly MaskTerm[]): Pick<SliceRequest, 'seeds' | 'signs'> {
  const seeds = new Uint8Array(terms.length * SEED_LENGTH);
  const signs = new Int8Array(terms.length);
  for (const [i, term] of terms.entries()) {
    seeds.set(term.seed, i * SEED_LENGTH);
    signs[i] = term.sign;
  }
  return { seeds, signs };
}

/** unmask-worker.js beside this file when compiled; from the TypeScript sources, dist's copy. */
function defaultWorkerScript(): string | undefined {
  const candidates = [
    join(__dirname, 'unmask-worker.js'),
    join(__dirname, '..', 'dist', 'coordinator', 'unmask-worker.js'),
  ];
  return candidates.find((path) => existsSync(path));
}
