import { backend_util } from '@tensorflow/tfjs';
import type { Conv2DBackpropFilterAttrs, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { filterGradientByConv } from './filter-gradient-conv';
import { filterGradientByIm2col } from './filter-gradient-im2col';
import type { KernelArgs, WasmBackendLike } from './wasm-kernel-call';

type Shape4 = [number, number, number, number];

/** Tuning of the composed filter gradient (defaults measured on a 2-core machine). */
export interface FilterGradientOptions {
  /** Inputs with at most this many channels use the im2col product (default 4). */
  im2colMaxInChannels?: number;
  /** Bound on the im2col patch matrix, in floats, per batch chunk (default 4 Mi = 16 MB). */
  maxPatchFloats?: number;
}

/**
 * The filter gradient (`Conv2DBackpropFilter`) of an NHWC conv2d for the wasm backend,
 * which ships no such kernel, so no CNN could train there. It is composed from the
 * backend's own kernels, choosing per call the faster of two exact formulations (see
 * filter-gradient-conv.ts and filter-gradient-im2col.ts). Any stride; 'same', 'valid' or
 * explicit padding; float32.
 */
export function makeConv2DBackpropFilterWasm(options: FilterGradientOptions = {}): KernelFunc {
  const im2colMaxInChannels = options.im2colMaxInChannels ?? 4;
  const maxPatchFloats = options.maxPatchFloats ?? 2 ** 22;
  return (args: KernelArgs): TensorInfo => {
    const backend = args.backend as WasmBackendLike;
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const attrs = args.attrs as unknown as Conv2DBackpropFilterAttrs;
    if (attrs.dataFormat === 'NCHW') {
      throw new Error('Conv2DBackpropFilter on wasm supports NHWC only (as does wasm Conv2D)');
    }
    if (x.dtype !== 'float32' || dy.dtype !== 'float32') {
      throw new Error('Conv2DBackpropFilter on wasm supports float32 only');
    }
    const info = backend_util.computeConv2DInfo(
      x.shape as Shape4,
      attrs.filterShape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      'channelsLast',
    );
    return info.inChannels <= im2colMaxInChannels
      ? filterGradientByIm2col(backend, x, dy, info, attrs.filterShape, maxPatchFloats)
      : filterGradientByConv(backend, x, dy, info);
  };
}
