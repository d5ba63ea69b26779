import * as tf from '@tensorflow/tfjs';
import * as wasmPackage from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../../client-node/backend/select-backend';
import { classifyLoadFailure } from '../../client-node/backend/load-failure';
import { isCohortError } from '../../shared/errors';
import type { CohortError } from '../../shared/errors';

const GPU = '@tensorflow/tfjs-node-gpu';
const NODE = '@tensorflow/tfjs-node';
const WASM = '@tensorflow/tfjs-backend-wasm';

function notInstalled(name: string): Error {
  return Object.assign(new Error(`Cannot find module '${name}'\nRequire stack:\n- /app/x.js`), {
    code: 'MODULE_NOT_FOUND',
  });
}

function missingCuda(): Error {
  return Object.assign(
    new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory'),
    { code: 'ERR_DLOPEN_FAILED' },
  );
}

/** Stands in for libtensorflow: the cpu backend under the name tfjs-node registers. */
class FakeNativeBackend extends tf.MathBackendCPU {
  constructor(readonly isUsingGpuDevice: boolean) {
    super();
  }
}

/** What requiring tfjs-node(-gpu) does: register and activate the 'tensorflow' backend. */
function fakeNativePackage(usingGpu: boolean): () => unknown {
  return () => {
    if (tf.getKernel('Fill', 'tensorflow') === undefined)
      tf.copyRegisteredKernels('cpu', 'tensorflow');
    tf.registerBackend('tensorflow', () => new FakeNativeBackend(usingGpu), 3);
    return {};
  };
}

/** A loader serving `modules` by name, recording the order of requests. */
function loader(modules: Record<string, () => unknown>): {
  load: (name: string) => unknown;
  requested: string[];
} {
  const requested: string[] = [];
  return {
    requested,
    load: (name) => {
      requested.push(name);
      const make = modules[name];
      if (make === undefined) throw notInstalled(name);
      return make();
    },
  };
}

const realWasm = (): unknown => wasmPackage;

afterEach(async () => {
  await tf.setBackend('cpu');
  if (tf.findBackendFactory('tensorflow') !== null) tf.removeBackend('tensorflow');
});

describe('selectBackend: the auto chain', () => {
  it('tries node-gpu, then node, then wasm, and picks wasm when no native package exists', async () => {
    const { load, requested } = loader({ [WASM]: realWasm });
    const lines: string[] = [];
    const result = await selectBackend({ loadModule: load, log: (l) => lines.push(l) });
    expect(requested).toEqual([GPU, NODE, WASM]);
    expect(result.choice).toBe('wasm');
    expect(result.tfBackend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(lines.join('\n')).toMatch(/node-gpu: .*tfjs-node-gpu is not installed/);
    expect(result.detail).toMatch(/WebAssembly/);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });

  it('reports an installed GPU package that fails to load, with the CUDA requirement', async () => {
    const { load } = loader({
      [GPU]: () => {
        throw missingCuda();
      },
      [WASM]: realWasm,
    });
    const lines: string[] = [];
    const result = await selectBackend({ loadModule: load, log: (l) => lines.push(l) });
    expect(result.choice).toBe('wasm');
    expect(lines[0]).toMatch(/installed but failed to load: libcudart\.so\.11\.0/);
    expect(lines[0]).toMatch(/CUDA 11\.2 and cuDNN 8\.1/);
    expect(result.detail).toMatch(/skipped: .*tfjs-node-gpu is installed but failed to load/);
  });

  it('picks tfjs-node when the GPU package is absent', async () => {
    const { load, requested } = loader({ [NODE]: fakeNativePackage(false), [WASM]: realWasm });
    const result = await selectBackend({ loadModule: load });
    expect(requested).toEqual([GPU, NODE]);
    expect(result).toMatchObject({ choice: 'node', tfBackend: 'tensorflow' });
    expect(tf.getBackend()).toBe('tensorflow');
  });

  it('picks node-gpu when TensorFlow sees a GPU, and never loads tfjs-node', async () => {
    const { load, requested } = loader({
      [GPU]: fakeNativePackage(true),
      [NODE]: fakeNativePackage(false),
    });
    const result = await selectBackend({ loadModule: load });
    expect(requested).toEqual([GPU]);
    expect(result).toMatchObject({ choice: 'node-gpu', tfBackend: 'tensorflow' });
    expect(result.detail).toMatch(/CUDA GPU/);
  });

  it('uses the GPU package on the CPU when no GPU is usable, and says why', async () => {
    const { load } = loader({ [GPU]: fakeNativePackage(false) });
    const result = await selectBackend({ loadModule: load });
    expect(result.choice).toBe('node');
    expect(result.detail).toMatch(/no usable GPU.*CUDA 11\.2 and cuDNN 8\.1/);
  });

  it('falls back to cpu when wasm cannot load either', async () => {
    const { load, requested } = loader({});
    const result = await selectBackend({ loadModule: load });
    expect(requested).toEqual([GPU, NODE, WASM]);
    expect(result).toMatchObject({ choice: 'cpu', tfBackend: 'cpu' });
    expect(result.detail).toMatch(
      /skipped: node-gpu: not installed; node: not installed; wasm: not installed/,
    );
  });
});

describe('selectBackend: a forced backend', () => {
  async function forcedError(
    preferred: 'node-gpu' | 'node' | 'wasm',
    modules: Record<string, () => unknown>,
  ): Promise<CohortError> {
    const { load, requested } = loader(modules);
    const error: unknown = await selectBackend({ preferred, loadModule: load }).catch(
      (e: unknown) => e,
    );
    expect(isCohortError(error, 'BACKEND_UNAVAILABLE')).toBe(true);
    expect(requested).toHaveLength(1); // no silent fallback to another package
    return error as CohortError;
  }

  it('--backend node that is not installed says how to install it', async () => {
    const error = await forcedError('node', { [WASM]: realWasm });
    expect(error.message).toMatch(
      /--backend node cannot be used: @tensorflow\/tfjs-node is not installed/,
    );
    expect(error.message).toMatch(/npm install @tensorflow\/tfjs-node/);
    expect(error.message).toMatch(/--backend auto/);
  });

  it('--backend node-gpu with missing CUDA libraries names them', async () => {
    const error = await forcedError('node-gpu', {
      [GPU]: () => {
        throw missingCuda();
      },
    });
    expect(error.message).toMatch(/installed but failed to load: libcudart/);
    expect(error.message).toMatch(/CUDA 11\.2 and cuDNN 8\.1/);
  });

  it('--backend node-gpu without a usable GPU is refused rather than run on the CPU', async () => {
    const error = await forcedError('node-gpu', { [GPU]: fakeNativePackage(false) });
    expect(error.message).toMatch(/found no usable GPU/);
  });

  it('--backend wasm that cannot load is an error', async () => {
    const error = await forcedError('wasm', {});
    expect(error.message).toMatch(/tfjs-backend-wasm is not installed/);
  });

  it('--backend node that is installed selects it', async () => {
    const { load } = loader({ [NODE]: fakeNativePackage(false) });
    await expect(selectBackend({ preferred: 'node', loadModule: load })).resolves.toMatchObject({
      choice: 'node',
    });
  });
});

describe('selectBackend with the real packages', () => {
  it.each(['wasm', 'cpu'] as const)('selects %s and trains a step on it', async (preferred) => {
    const result = await selectBackend({ preferred });
    expect(result.choice).toBe(preferred);
    expect(tf.getBackend()).toBe(preferred);
    // One gradient step through a conv layer works on the chosen backend.
    const w = tf.variable(tf.ones([3, 3, 1, 2]));
    const x = tf.ones<tf.Rank.R4>([1, 5, 5, 1]);
    const { grads, value } = tf.variableGrads(() =>
      tf.sum(tf.conv2d(x, w as tf.Tensor4D, 1, 'same')),
    );
    // 2 filters x the summed sizes of the 25 clipped 3x3 windows (4 corners x4, 12 edges x6, 9x9).
    expect(value.dataSync()[0]).toBeCloseTo(2 * 169, 3);
    expect(grads[w.name]!.shape).toEqual([3, 3, 1, 2]);
    tf.dispose([w, x, value, grads]);
  });
});

describe('classifyLoadFailure', () => {
  it('tells a missing package from a broken one', () => {
    expect(classifyLoadFailure(NODE, notInstalled(NODE)).installed).toBe(false);
    const missingAddon = Object.assign(
      new Error(`Cannot find module '/app/node_modules/${NODE}/lib/napi-v8/tfjs_binding.node'`),
      { code: 'MODULE_NOT_FOUND' },
    );
    const broken = classifyLoadFailure(NODE, missingAddon);
    expect(broken.installed).toBe(true);
    expect(broken.reason).toMatch(/npm rebuild @tensorflow\/tfjs-node/);
    const dlopen = classifyLoadFailure(
      NODE,
      Object.assign(new Error('libtensorflow.so.2: cannot open shared object file'), {
        code: 'ERR_DLOPEN_FAILED',
      }),
    );
    expect(dlopen).toMatchObject({ installed: true });
    expect(dlopen.reason).toMatch(/native library could not be loaded/);
  });
});
