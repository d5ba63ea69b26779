import {
  BatchMatMul,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  getKernel,
  MaxPoolGrad,
  registerKernel,
  Sum,
  unregisterKernel,
} from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc } from '@tensorflow/tfjs';
import { CohortError } from '../errors';
import { makeBatchMatMulWasm } from './batch-mat-mul';
import { makeConv2DBackpropFilterWasm } from './conv2d-backprop-filter';
import { makeConv2DBackpropInputWasm } from './conv2d-backprop-input';
import { makeMaxPoolGradWasm } from './max-pool-grad';
import { makeSumWasm } from './sum-leading-axes';

/** Kernel functions this module installed, so a second registration is a no-op. */
const installed = new WeakSet<KernelFunc>();

/**
 * Makes the tfjs wasm backend able to train CNNs, and faster at it: registers the missing
 * `Conv2DBackpropFilter` and replaces `Conv2DBackpropInput`, `MaxPoolGrad`, `BatchMatMul`
 * (transposed operands) and `Sum` (over leading axes) with composed versions that fall back to
 * the originals for cases they do not cover. Shared by the Node
 * and browser clients. Call it after '@tensorflow/tfjs-backend-wasm' has been imported
 * (before or after `tf.setBackend('wasm')`); calling it again does nothing.
 */
export function registerWasmTrainingKernels(): void {
  if (getKernel(Conv2D, 'wasm') === undefined) {
    throw new CohortError(
      'BACKEND_UNAVAILABLE',
      "the wasm backend's kernels are not registered: import '@tensorflow/tfjs-backend-wasm' first",
    );
  }
  install(
    Conv2DBackpropFilter,
    (original) => original?.kernelFunc ?? makeConv2DBackpropFilterWasm(),
  );
  install(Conv2DBackpropInput, (original) =>
    original ? makeConv2DBackpropInputWasm(original.kernelFunc) : undefined,
  );
  install(MaxPoolGrad, (original) =>
    original ? makeMaxPoolGradWasm(original.kernelFunc) : undefined,
  );
  install(BatchMatMul, (original) =>
    original ? makeBatchMatMulWasm(original.kernelFunc) : undefined,
  );
  install(Sum, (original) => (original ? makeSumWasm(original.kernelFunc) : undefined));
}

/**
 * Registers `build(current)` for `kernelName` on wasm unless already ours. The replaced
 * config's setupFunc/disposeFunc are kept: the original kernel (our fallback) only works
 * once its setupFunc has bound its wasm function, which the engine does at backend start.
 */
function install(
  kernelName: string,
  build: (current: KernelConfig | undefined) => KernelFunc | undefined,
): void {
  const current = getKernel(kernelName, 'wasm');
  if (current !== undefined && installed.has(current.kernelFunc)) return;
  const kernelFunc = build(current);
  if (kernelFunc === undefined || kernelFunc === current?.kernelFunc) return;
  installed.add(kernelFunc);
  if (current !== undefined) unregisterKernel(kernelName, 'wasm');
  const config: KernelConfig = { kernelName, backendName: 'wasm', kernelFunc };
  if (current?.setupFunc) config.setupFunc = current.setupFunc;
  if (current?.disposeFunc) config.disposeFunc = current.disposeFunc;
  registerKernel(config);
}
