/**
 * Data-parallel local training for Node clients without native TensorFlow: the wasm backend
 * runs on one thread, so a client with N cores starts N - 1 worker threads, each with its own
 * wasm instance and model, that compute parts of every step's gradient (see
 * shared/training/gradient-helpers.ts). The training data is copied once into shared memory
 * that every worker reads; each step sends the weights and receives one summed gradient.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Dataset } from '../../shared/data/dataset';
import { CohortError } from '../../shared/errors';
import type { ModelSpec } from '../../shared/model/spec';
import type { GradientHelpers, HelperGradients } from '../../shared/training/gradient-helpers';
import type { GradientWorkerRequest, GradientWorkerResponse } from './gradient-messages';

/** Options of {@link WorkerGradientHelpers}. */
export interface WorkerGradientHelpersOptions {
  /** Worker threads besides the caller (threads - 1). */
  count: number;
  spec: ModelSpec;
  /** The backend every worker runs; the caller's. */
  backend: 'wasm' | 'cpu';
  /** The compiled worker; default: gradient-worker.js beside this module (or in dist/). */
  workerScript?: string;
}

interface Waiter {
  resolve(response: GradientWorkerResponse): void;
  reject(error: Error): void;
}

/** One gradient worker and the answers it owes. */
class GradientWorker {
  private readonly worker: Worker;
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 0;
  readonly ready: Promise<void>;

  constructor(script: string, spec: ModelSpec, backend: 'wasm' | 'cpu') {
    this.worker = new Worker(script);
    this.ready = new Promise<void>((resolve, reject) => {
      this.waiters.set(-1, {
        resolve: (r) => (r.type === 'ready' ? resolve() : reject(failure(r))),
        reject,
      });
    });
    this.ready.catch(() => undefined); // awaited by every step; failing early is not unhandled
    this.worker.on('message', (response: GradientWorkerResponse) => {
      const waiter = this.waiters.get(response.id);
      this.waiters.delete(response.id);
      this.holdProcessWhileBusy();
      waiter?.resolve(response);
    });
    this.worker.on('error', (error) => this.fail(`a training thread failed: ${error.message}`));
    this.worker.on('exit', (code) => this.fail(`a training thread exited with code ${code}`));
    this.holdProcessWhileBusy(); // after the listeners: adding one refs the worker again
    this.send({ type: 'init', spec, backend });
  }

  send(request: GradientWorkerRequest, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(request, transfer);
  }

  async compute(weights: Float32Array, parts: number[][]): Promise<HelperGradients> {
    // Posted before any await: the caller computes its own part synchronously right after this
    // call returns, and a message posted later would wait for that, serializing the threads.
    // The worker handles messages in order, so this one follows its initialisation.
    const id = this.nextId++;
    const copy = weights.slice();
    const answer = new Promise<GradientWorkerResponse>((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
    });
    this.holdProcessWhileBusy();
    this.send({ type: 'compute', id, weights: copy, parts }, [copy.buffer]);
    const response = await answer;
    if (response.type !== 'result') throw failure(response);
    return { gradient: response.gradient, lossSum: response.lossSum };
  }

  async terminate(): Promise<void> {
    this.waiters.clear();
    await this.worker.terminate();
  }

  private fail(message: string): void {
    const error = new CohortError('TRAINING_FAILED', message);
    for (const waiter of this.waiters.values()) waiter.reject(error);
    this.waiters.clear();
  }

  /** An idle worker never keeps a finished process alive; one with work to answer does. */
  private holdProcessWhileBusy(): void {
    if (this.waiters.size > 0) this.worker.ref();
    else this.worker.unref();
  }
}

/**
 * {@link GradientHelpers} on Node worker threads. Workers start when created and load their
 * backend and model in the background; the first step waits for them.
 */
export class WorkerGradientHelpers implements GradientHelpers {
  readonly count: number;
  private readonly workers: GradientWorker[];
  private shared: { source: Dataset; copy: Dataset } | undefined;

  constructor(options: WorkerGradientHelpersOptions) {
    if (!Number.isInteger(options.count) || options.count < 1) {
      throw new CohortError(
        'CONFIG_INVALID',
        `training helpers must be >= 1, got ${options.count}`,
      );
    }
    const script = options.workerScript ?? defaultWorkerScript();
    if (script === undefined) {
      throw new CohortError(
        'BACKEND_UNAVAILABLE',
        'the compiled training worker (gradient-worker.js) was not found: run npm run build',
      );
    }
    this.count = options.count;
    this.workers = Array.from(
      { length: options.count },
      () => new GradientWorker(script, options.spec, options.backend),
    );
  }

  async begin(data: Dataset): Promise<void> {
    await Promise.all(this.workers.map((w) => w.ready));
    if (this.shared?.source === data) return; // the same shard as last round: already there
    const images = new Float32Array(new SharedArrayBuffer(data.images.byteLength));
    images.set(data.images);
    const labels = new Uint8Array(new SharedArrayBuffer(data.labels.byteLength));
    labels.set(data.labels);
    const copy: Dataset = { ...data, images, labels };
    this.shared = { source: data, copy };
    for (const w of this.workers) {
      w.send({
        type: 'data',
        images,
        labels,
        count: copy.count,
        shape: copy.shape,
        classes: copy.classes,
      });
    }
  }

  async compute(
    weights: Float32Array,
    parts: readonly (readonly number[])[],
  ): Promise<HelperGradients> {
    if (parts.length > this.workers.length) {
      throw new CohortError('INTERNAL', `${parts.length} parts for ${this.workers.length} helpers`);
    }
    const results = await Promise.all(
      parts.map((part, i) => this.workers[i]!.compute(weights, [[...part]])),
    );
    const gradient = new Float32Array(weights.length);
    let lossSum = 0;
    for (const r of results) {
      for (let i = 0; i < gradient.length; i++) gradient[i]! += r.gradient[i]!;
      lossSum += r.lossSum;
    }
    return { gradient, lossSum };
  }

  /** Stops every worker. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function failure(response: GradientWorkerResponse): CohortError {
  const message = response.type === 'error' ? response.message : `unexpected ${response.type}`;
  return new CohortError('TRAINING_FAILED', `a training thread failed: ${message}`);
}

/** gradient-worker.js beside this file when compiled; from the TypeScript sources, dist's copy. */
function defaultWorkerScript(): string | undefined {
  const candidates = [
    join(__dirname, 'gradient-worker.js'),
    join(__dirname, '..', '..', 'dist', 'client-node', 'training', 'gradient-worker.js'),
  ];
  return candidates.find((path) => existsSync(path));
}
