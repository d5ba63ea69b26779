import * as tf from '@tensorflow/tfjs';
import { CohortError } from '../../shared/errors';
import { registerWasmTrainingKernels } from '../../shared/tfjs-kernels';
import { classifyLoadFailure, GPU_REQUIREMENTS, LIBTENSORFLOW_VERSION } from './load-failure';

/** The TensorFlow.js backends the Node client can train on, fastest first. */
export type BackendChoice = 'node-gpu' | 'node' | 'wasm' | 'cpu';

/** What the user asked for with `--backend`: a specific backend, or the best that loads. */
export type BackendPreference = 'auto' | BackendChoice;

/** The fallback order of `auto`. */
export const BACKEND_CHAIN: readonly BackendChoice[] = ['node-gpu', 'node', 'wasm', 'cpu'];

/** The backend in use, for the caller to print: `detail` says what runs and what was skipped. */
export interface BackendSelection {
  readonly choice: BackendChoice;
  /** The tfjs backend name now active (`tf.getBackend()`). */
  readonly tfBackend: string;
  readonly detail: string;
}

export interface SelectBackendOptions {
  /** Default 'auto'. A specific backend that cannot load is an error, never a silent fallback. */
  preferred?: BackendPreference;
  /** Loads a package by name (default: Node's require). Injected by tests. */
  loadModule?: (name: string) => unknown;
  /** Receives one line per backend tried. */
  log?: (line: string) => void;
}

const PACKAGES = {
  'node-gpu': '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
} as const;

type Attempt =
  { ok: true; selection: BackendSelection } | { ok: false; installed: boolean; reason: string };

/**
 * Activates the fastest TensorFlow.js backend this machine can run: tfjs-node-gpu, then
 * tfjs-node (both optional dependencies whose install downloads libtensorflow, so they are
 * often absent), then wasm (with Cohort's training kernels), then plain JS. Each candidate
 * must also pass a tiny computation before it is chosen. A package that is installed but
 * fails to load is reported through `log` and in `detail`, since the user expected it.
 * @throws CohortError BACKEND_UNAVAILABLE when a specific `preferred` backend cannot be used.
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<BackendSelection> {
  const preferred = options.preferred ?? 'auto';
  const load = options.loadModule ?? defaultLoadModule;
  const log = options.log ?? ((): void => undefined);
  if (preferred !== 'auto') {
    if (!BACKEND_CHAIN.includes(preferred)) {
      throw new CohortError(
        'CONFIG_INVALID',
        `unknown backend '${String(preferred)}'; use auto, ${BACKEND_CHAIN.join(', ')}`,
      );
    }
    const attempt = await tryBackend(preferred, load, true);
    if (attempt.ok) return attempt.selection;
    log(`backend ${preferred}: ${attempt.reason}`);
    throw new CohortError('BACKEND_UNAVAILABLE', forcedFailureMessage(preferred, attempt));
  }
  const skipped: string[] = [];
  for (const candidate of BACKEND_CHAIN) {
    const attempt = await tryBackend(candidate, load, false);
    if (attempt.ok) {
      const { selection } = attempt;
      if (skipped.length === 0) return selection;
      return { ...selection, detail: `${selection.detail} (skipped: ${skipped.join('; ')})` };
    }
    log(`backend ${candidate}: ${attempt.reason}`);
    skipped.push(attempt.installed ? attempt.reason : `${candidate}: not installed`);
  }
  throw new CohortError(
    'BACKEND_UNAVAILABLE',
    `no TensorFlow.js backend could be used: ${skipped.join('; ')}`,
  );
}

function defaultLoadModule(name: string): unknown {
  // Lazy on purpose: the native packages are optional and loading them has side effects.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(name);
}

async function tryBackend(
  choice: BackendChoice,
  load: (name: string) => unknown,
  forced: boolean,
): Promise<Attempt> {
  let loaded: unknown;
  if (choice !== 'cpu') {
    const packageName = PACKAGES[choice];
    try {
      loaded = load(packageName);
    } catch (error) {
      return { ok: false, ...classifyLoadFailure(packageName, error) };
    }
  }
  try {
    if (choice === 'wasm') registerWasmTrainingKernels();
    const tfBackend = choice === 'node-gpu' || choice === 'node' ? 'tensorflow' : choice;
    if (!(await tf.setBackend(tfBackend))) {
      return {
        ok: false,
        installed: true,
        reason: `tfjs backend '${tfBackend}' failed to initialise`,
      };
    }
    smokeTest();
    if (choice === 'node-gpu') return nodeGpuOutcome(forced);
    return {
      ok: true,
      selection: { choice, tfBackend, detail: await describeBackend(choice, loaded) },
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      installed: true,
      reason: `${choice} loaded but failed a test computation: ${message}`,
    };
  }
}

/** tfjs-node-gpu runs on the CPU when TensorFlow finds no usable GPU: say so, don't pretend. */
function nodeGpuOutcome(forced: boolean): Attempt {
  const usingGpu = (tf.backend() as { isUsingGpuDevice?: unknown }).isUsingGpuDevice === true;
  if (usingGpu) {
    return {
      ok: true,
      selection: {
        choice: 'node-gpu',
        tfBackend: 'tensorflow',
        detail: `@tensorflow/tfjs-node-gpu: libtensorflow ${LIBTENSORFLOW_VERSION} on a CUDA GPU`,
      },
    };
  }
  const reason = `@tensorflow/tfjs-node-gpu loaded but TensorFlow found no usable GPU (${GPU_REQUIREMENTS})`;
  if (forced) return { ok: false, installed: true, reason };
  return {
    ok: true,
    selection: {
      choice: 'node',
      tfBackend: 'tensorflow',
      detail: `libtensorflow ${LIBTENSORFLOW_VERSION} on the CPU via @tensorflow/tfjs-node-gpu: ${reason}`,
    },
  };
}

/** A 2x2 matrix product: proves the backend computes, not just that it registered. */
function smokeTest(): void {
  const values = tf.tidy(() => tf.matMul(tf.ones([2, 2]), tf.fill([2, 2], 3)).dataSync());
  if (values.length !== 4 || !Array.from(values).every((v) => v === 6)) {
    throw new Error(`2x2 product gave [${Array.from(values).join(', ')}], expected all 6`);
  }
}

async function describeBackend(
  choice: Exclude<BackendChoice, 'node-gpu'>,
  loaded: unknown,
): Promise<string> {
  switch (choice) {
    case 'node':
      return `@tensorflow/tfjs-node: libtensorflow ${LIBTENSORFLOW_VERSION} on the CPU`;
    case 'wasm': {
      const simd = await tf
        .env()
        .getAsync('WASM_HAS_SIMD_SUPPORT')
        .then((v) => v === true)
        .catch(() => false);
      const getThreads = (loaded as { getThreadsCount?: unknown } | undefined)?.getThreadsCount;
      const threads =
        typeof getThreads === 'function' ? Number((getThreads as () => unknown)()) : 1;
      return (
        `WebAssembly (XNNPACK${simd ? ', SIMD' : ''}, ${threads} thread${threads === 1 ? '' : 's'}) ` +
        'with Cohort training kernels; install @tensorflow/tfjs-node for native speed'
      );
    }
    case 'cpu':
      return 'plain JavaScript (very slow for CNNs: ~100x slower than wasm)';
  }
}

function forcedFailureMessage(
  choice: BackendChoice,
  failure: { installed: boolean; reason: string },
): string {
  const base = `--backend ${choice} cannot be used: ${failure.reason}.`;
  if (choice === 'node-gpu' || choice === 'node') {
    const pkg = PACKAGES[choice];
    const install = failure.installed
      ? ''
      : ` Install it with \`npm install ${pkg}\` (its install script downloads libtensorflow ${LIBTENSORFLOW_VERSION}, so it needs internet access${choice === 'node-gpu' ? `; ${GPU_REQUIREMENTS}` : ''}).`;
    return `${base}${install} Or pass --backend auto to fall back to the fastest backend that loads.`;
  }
  return `${base} Pass --backend auto to fall back to the fastest backend that loads.`;
}
