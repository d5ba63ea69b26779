import { Transpose } from '@tensorflow/tfjs';
import type { BatchMatMulAttrs, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { callWasmKernel, freeAll } from './wasm-kernel-call';
import type { KernelArgs, WasmBackendLike } from './wasm-kernel-call';

/**
 * BatchMatMul with a transposed operand, made fast on wasm: the backend's kernel is XNNPACK
 * only for untransposed operands and otherwise a plain loop, and training asks for exactly
 * those products (a dense layer's weight gradient is xᵀ·dy, its input gradient dy·Wᵀ). Measured
 * on a 2-core machine: xᵀ·dy for [32,1024]x[32,128] 18.5 -> 0.7 ms, dy·Wᵀ for
 * [32,128]x[1024,128] 5.5 -> 3.0 ms. The operand is transposed once by the wasm Transpose
 * kernel and the untransposed product runs on XNNPACK: the same sums of the same products.
 * Non-float operands go to `original`.
 */
export function makeBatchMatMulWasm(original: KernelFunc): KernelFunc {
  return (args) => batchMatMulWasm(args, original);
}

function batchMatMulWasm(args: KernelArgs, original: KernelFunc): TensorInfo | TensorInfo[] {
  const attrs = args.attrs as unknown as BatchMatMulAttrs;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  if (!attrs.transposeA && !attrs.transposeB) return original(args);
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return original(args);
  const backend = args.backend as WasmBackendLike;
  let transposedA: TensorInfo | undefined;
  let transposedB: TensorInfo | undefined;
  try {
    if (attrs.transposeA) transposedA = transposeInnerPair(backend, a);
    if (attrs.transposeB) transposedB = transposeInnerPair(backend, b);
    return original({
      inputs: { a: transposedA ?? a, b: transposedB ?? b },
      backend: args.backend,
      attrs: { ...args.attrs, transposeA: false, transposeB: false },
    });
  } finally {
    freeAll(backend, [transposedA, transposedB]);
  }
}

/** Swaps the last two dimensions ([..., r, c] -> [..., c, r]) with the wasm Transpose kernel. */
function transposeInnerPair(backend: WasmBackendLike, x: TensorInfo): TensorInfo {
  const rank = x.shape.length;
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return callWasmKernel(Transpose, backend, { x }, { perm });
}
