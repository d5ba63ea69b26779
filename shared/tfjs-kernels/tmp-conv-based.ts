import { backend_util, Conv2D, Slice, Transpose } from '@tensorflow/tfjs';
import type { Conv2DBackpropFilterAttrs, TensorInfo } from '@tensorflow/tfjs';
import { callWasmKernel, freeAll } from './wasm-kernel-call';
import type { KernelArgs, WasmBackendLike } from './wasm-kernel-call';

type Shape4 = [number, number, number, number];

/**
 * The filter gradient of an NHWC conv2d on the wasm backend, which ships no kernel for it
 * (so no CNN could train there). It is the correlation of the input with the output
 * gradient, computed as one wasm Conv2D in which the batch plays the channel role:
 *
 *   x  [N,H,W,Cin]  -> [Cin,H,W,N]    (Cin becomes the batch)
 *   dy [N,OH,OW,Co] -> [OH,OW,N,Co]   (dy becomes an OHxOW filter)
 *   Conv2D, dilation = original stride, explicit padding -> [Cin,KH,KW,Co] -> [KH,KW,Cin,Co]
 *
 * 'valid' convolutions whose stride skips the last rows or columns of x produce a slightly
 * larger result that is cropped with Slice. Any stride, 'same'/'valid'/explicit padding.
 */
export function conv2DBackpropFilterWasm(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as Conv2DBackpropFilterAttrs;
  if (attrs.dataFormat === 'NCHW') {
    throw new Error('Conv2DBackpropFilter on wasm supports NHWC only (as does wasm Conv2D)');
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
  const { strideHeight, strideWidth, filterHeight, filterWidth, padInfo } = info;
  const [, outHeight, outWidth] = dy.shape as Shape4;
  // Padding after the input so that the dilated "filter" (dy) yields exactly K outputs;
  // negative when the forward pass never read the input's last rows/columns.
  const bottom = filterHeight + (outHeight - 1) * strideHeight - padInfo.top - info.inHeight;
  const right = filterWidth + (outWidth - 1) * strideWidth - padInfo.left - info.inWidth;

  let xT: TensorInfo | undefined;
  let dyT: TensorInfo | undefined;
  let correlated: TensorInfo | undefined;
  let cropped: TensorInfo | undefined;
  try {
    xT = callWasmKernel(Transpose, backend, { x }, { perm: [3, 1, 2, 0] });
    dyT = callWasmKernel(Transpose, backend, { x: dy }, { perm: [1, 2, 0, 3] });
    correlated = callWasmKernel(
      Conv2D,
      backend,
      { x: xT, filter: dyT },
      {
        strides: [1, 1],
        pad: [
          [0, 0],
          [padInfo.top, Math.max(0, bottom)],
          [padInfo.left, Math.max(0, right)],
          [0, 0],
        ],
        dataFormat: 'NHWC',
        dilations: [strideHeight, strideWidth],
      },
    );
    let gradient = correlated;
    if (bottom < 0 || right < 0) {
      cropped = callWasmKernel(
        Slice,
        backend,
        { x: correlated },
        { begin: [0, 0, 0, 0], size: [info.inChannels, filterHeight, filterWidth, info.outChannels] },
      );
      gradient = cropped;
    }
    return callWasmKernel(Transpose, backend, { x: gradient }, { perm: [1, 2, 0, 3] });
  } finally {
    freeAll(backend, [xT, dyT, correlated, cropped]);
  }
}
