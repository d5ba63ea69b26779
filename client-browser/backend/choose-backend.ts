import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { randomDataset } from '../../shared/data/random-dataset';
import { CohortError, isCohortError } from '../../shared/errors';
import { buildModel } from '../../shared/model/build-model';
import type { ModelSpec } from '../../shared/model/spec';
import { registerWasmTrainingKernels } from '../../shared/tfjs-kernels';
import { trainLocally } from '../../shared/training/local-train';

/** The tfjs backends a tab can train on, in the order they are tried. */
export const BROWSER_BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BrowserBackend = (typeof BROWSER_BACKENDS)[number];

/** One benchmarked candidate: its training speed, or why it could not be used. */
export interface BackendMeasurement {
  backend: BrowserBackend;
  imagesPerSecond?: number;
  error?: string;
}

/** The backend now active, why, and every candidate's result. */
export interface BackendChoice {
  backend: BrowserBackend;
  reason: string;
  measurements: BackendMeasurement[];
}

/** Images per benchmark step: a typical local batch. */
const BENCH_BATCH = 16;
/** Timed steps after the untimed warm-up step (shader compilation, wasm start-up). */
const BENCH_STEPS = 2;
/** A candidate's timed steps stop after this long; a slower warm-up ends its measurement. */
const BENCH_CAP_MS = 4_000;
/** Longest wait for a backend to initialise (a GPU adapter or a wasm binary to load). */
const INIT_TIMEOUT_MS = 15_000;
/** Where the coordinator serves the tfjs wasm binaries. */
const WASM_ASSETS = '/assets/';

/** True for the backend names `?backend=` accepts. */
export function isBrowserBackend(name: string): name is BrowserBackend {
  return (BROWSER_BACKENDS as readonly string[]).includes(name);
}

/**
 * Activates the fastest TensorFlow.js backend this tab can train the task's model on: each
 * candidate that initialises trains a few batches of random data with the real training loop
 * (one untimed warm-up step, then {@link BENCH_STEPS} timed ones), and the most images per
 * second wins. Measured, not assumed: on a machine without a real GPU, WebGL runs on a
 * software rasteriser and loses to wasm by an order of magnitude. Plain JS (cpu) is tried
 * only when nothing else works. A `forced` backend that fails is an error, never a fallback.
 * @throws CohortError BACKEND_UNAVAILABLE when no (or not the forced) backend works.
 */
export async function chooseBackend(
  spec: ModelSpec,
  options: { forced?: BrowserBackend; log?: (line: string) => void } = {},
): Promise<BackendChoice> {
  const log = options.log ?? ((): void => undefined);
  wasmPrepared ??= prepareWasm(log);
  const wasmNote = await wasmPrepared;
  const measurements: BackendMeasurement[] = [];
  const candidates: BrowserBackend[] =
    options.forced !== undefined ? [options.forced] : ['webgpu', 'webgl', 'wasm'];
  for (const backend of candidates) {
    const measurement = await measure(backend, spec);
    measurements.push(measurement);
    log(describeMeasurement(measurement));
  }
  if (options.forced === undefined && !measurements.some(works)) {
    const measurement = await measure('cpu', spec);
    measurements.push(measurement);
    log(describeMeasurement(measurement));
  }
  const best = measurements
    .filter(works)
    .sort((a, b) => b.imagesPerSecond! - a.imagesPerSecond!)[0];
  if (best === undefined) {
    const why = measurements.map(describeMeasurement).join('; ');
    throw new CohortError(
      'BACKEND_UNAVAILABLE',
      options.forced !== undefined
        ? `?backend=${options.forced} cannot be used here: ${why}. Remove ?backend= to use the fastest backend that works`
        : `no TensorFlow.js backend works in this browser: ${why}`,
    );
  }
  if (!(await tf.setBackend(best.backend))) {
    throw new CohortError(
      'BACKEND_UNAVAILABLE',
      `${best.backend} stopped working after its benchmark`,
    );
  }
  return {
    backend: best.backend,
    reason: reasonFor(best, measurements, wasmNote),
    measurements,
  };
}

/** The wasm set-up, done once per page (tfjs refuses new wasm paths after an init). */
let wasmPrepared: Promise<string> | null = null;

function works(measurement: BackendMeasurement): boolean {
  return measurement.imagesPerSecond !== undefined;
}

/**
 * Readies the wasm backend before its first use: binaries from `/assets/`, Cohort's training
 * kernels, and threads only where they can start. tfjs picks the threaded binary by itself
 * when SharedArrayBuffer exists (a crossOriginIsolated page); its worker threads start from a
 * `blob:` URL and then `importScripts` another `blob:` URL, which a CSP refuses unless both
 * `worker-src` and `script-src` admit `blob:`, and a refused thread leaves the backend
 * waiting forever. So that exact pattern is probed first, and threads are switched off (the
 * single-threaded SIMD binary is used) when it fails.
 */
async function prepareWasm(log: (line: string) => void): Promise<string> {
  setWasmPaths(WASM_ASSETS);
  registerWasmTrainingKernels();
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true ? 'SIMD, ' : '';
  if (!crossOriginIsolated) {
    return `${simd}single-threaded: the page is not cross-origin isolated (COOP/COEP headers)`;
  }
  if ((await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) !== true) {
    return `${simd}single-threaded: this browser has no WebAssembly threads`;
  }
  if (!(await canStartBlobWorkerThreads())) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    const note =
      "single-threaded: the page's Content-Security-Policy does not let a blob: worker load a " +
      'blob: script (threads need blob: in script-src and worker-src)';
    log(`wasm: ${note}`);
    return `${simd}${note}`;
  }
  return `${simd}multi-threaded binary`;
}

/**
 * Whether a worker started from a `blob:` URL can `importScripts` a `blob:` script here, as
 * the threaded wasm binary's workers do; answered within 3 s.
 */
function canStartBlobWorkerThreads(): Promise<boolean> {
  return new Promise((resolve) => {
    const urls: string[] = [];
    let worker: Worker | undefined;
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      worker?.terminate();
      for (const url of urls) URL.revokeObjectURL(url);
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), 3_000);
    const blobUrl = (code: string): string => {
      const url = URL.createObjectURL(new Blob([code], { type: 'text/javascript' }));
      urls.push(url);
      return url;
    };
    try {
      const script = blobUrl('self.cohortProbe = 1;');
      worker = new Worker(
        blobUrl(
          `try { importScripts(${JSON.stringify(script)}); postMessage(self.cohortProbe === 1); }` +
            ' catch (e) { postMessage(false); }',
        ),
      );
      worker.onmessage = (event: MessageEvent) => finish(event.data === true);
      worker.onerror = (event) => {
        event.preventDefault();
        finish(false);
      };
    } catch {
      finish(false);
    }
  });
}

/** Initialises `backend` and times the real training loop on random data. */
async function measure(backend: BrowserBackend, spec: ModelSpec): Promise<BackendMeasurement> {
  try {
    const ready = await withTimeout(
      tf.setBackend(backend),
      INIT_TIMEOUT_MS,
      `did not initialise within ${INIT_TIMEOUT_MS / 1000} s`,
    );
    if (!ready) return { backend, error: 'not available in this browser' };
  } catch (error) {
    // A backend still initialising would make every later tensor op throw: drop it.
    forget(backend);
    return { backend, error: errorText(error) };
  }
  const model = buildModel(spec);
  const stamps: number[] = [];
  const start = performance.now();
  try {
    await trainLocally(
      model,
      randomDataset(spec, BENCH_BATCH * (1 + BENCH_STEPS)),
      {
        epochs: 1,
        batchSize: BENCH_BATCH,
        learningRate: 0.01,
        optimizer: 'sgd',
        proximalMu: 0,
        seed: 0,
      },
      {
        onBatch: () => {
          stamps.push(performance.now());
        },
        shouldStop: () => stamps.length > 0 && performance.now() - stamps[0]! > BENCH_CAP_MS,
      },
    );
  } catch (error) {
    const stopped = isCohortError(error) && error.details?.stopped === true;
    if (!stopped) return { backend, error: `training failed: ${errorText(error)}` };
  } finally {
    model.dispose();
  }
  const first = stamps[0];
  const last = stamps[stamps.length - 1];
  if (first === undefined || last === undefined) return { backend, error: 'no step completed' };
  // Timed steps when there are any; else the warm-up step (a pessimistic rate).
  const imagesPerSecond =
    stamps.length > 1
      ? (BENCH_BATCH * (stamps.length - 1) * 1000) / (last - first)
      : (BENCH_BATCH * 1000) / (first - start);
  return { backend, imagesPerSecond: Math.round(imagesPerSecond * 10) / 10 };
}

/** Unregisters `backend`, cancelling an initialisation that never finished. */
function forget(backend: BrowserBackend): void {
  try {
    tf.removeBackend(backend);
  } catch {
    // Already gone; nothing to free.
  }
}

/** "wasm: 250 img/s vs webgl 18 img/s; webgpu: not available", plus what the winner runs on. */
function reasonFor(
  best: BackendMeasurement,
  measurements: BackendMeasurement[],
  wasmNote: string,
): string {
  const others = measurements
    .filter((m) => m !== best)
    .map((m) =>
      m.imagesPerSecond !== undefined
        ? `${m.backend} ${formatRate(m.imagesPerSecond)}`
        : `${m.backend}: ${m.error ?? 'failed'}`,
    );
  const head = `${best.backend}: ${formatRate(best.imagesPerSecond!)}`;
  const versus = others.length > 0 ? ` vs ${others.join(', ')}` : ' (forced with ?backend=)';
  return `${head}${versus}${detailOf(best.backend, wasmNote)}`;
}

function detailOf(backend: BrowserBackend, wasmNote: string): string {
  if (backend === 'wasm') {
    let threads = 1;
    try {
      threads = getThreadsCount();
    } catch {
      // Not initialised: cannot happen after a successful benchmark; report one thread.
    }
    return `; WebAssembly (${wasmNote}, ${threads} thread${threads === 1 ? '' : 's'})`;
  }
  if (backend === 'cpu') return '; plain JavaScript, very slow for CNNs';
  return '';
}

function formatRate(imagesPerSecond: number): string {
  return `${imagesPerSecond >= 100 ? imagesPerSecond.toFixed(0) : imagesPerSecond.toFixed(1)} img/s`;
}

/** One line per measurement, for the page's log. */
export function describeMeasurement(m: BackendMeasurement): string {
  return m.imagesPerSecond !== undefined
    ? `backend ${m.backend}: ${formatRate(m.imagesPerSecond)}`
    : `backend ${m.backend}: ${m.error ?? 'failed'}`;
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
