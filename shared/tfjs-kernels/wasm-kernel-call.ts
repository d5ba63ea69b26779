import { getKernel } from '@tensorflow/tfjs';
import type { NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';

/**
 * The few members of the wasm backend the composed kernels touch. Kept structural so this
 * folder needs no runtime import of '@tensorflow/tfjs-backend-wasm' (the browser and Node
 * each load that package their own way).
 */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** The arguments tfjs passes to every kernel function. */
export interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: object;
  attrs?: NamedAttrMap;
}

/**
 * Runs another wasm kernel directly, outside the engine, so composed kernels can chain
 * primitives without creating tracked tensors. The caller owns the returned TensorInfo and
 * must free it with `backend.disposeData` unless it is the final output.
 */
export function callWasmKernel(
  kernelName: string,
  backend: WasmBackendLike,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap,
): TensorInfo {
  const kernel = getKernel(kernelName, 'wasm');
  if (kernel === undefined) {
    throw new Error(
      `wasm kernel ${kernelName} is not registered: load @tensorflow/tfjs-backend-wasm first`,
    );
  }
  const out = kernel.kernelFunc({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`wasm kernel ${kernelName} returned several outputs`);
  return out;
}

/** Frees intermediate tensors a composed kernel created, ignoring `undefined` slots. */
export function freeAll(
  backend: WasmBackendLike,
  infos: ReadonlyArray<TensorInfo | undefined>,
): void {
  for (const info of infos) if (info !== undefined) backend.disposeData(info.dataId);
}

/** Normalises a tfjs `number | [number, number]` attribute to a pair. */
export function pair(value: number | readonly [number, number]): [number, number] {
  return typeof value === 'number' ? [value, value] : [value[0], value[1]];
}
