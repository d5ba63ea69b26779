import { Conv2D, Slice, Transpose } from '@tensorflow/tfjs';
import type { backend_util } from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';
import { callWasmKernel, freeAll } from './wasm-kernel-call';
import type { WasmBackendLike } from './wasm-kernel-call';

type Shape4 = [number, number, number, number];

/**
 * Filter gradient as one wasm Conv2D in which the batch plays the channel role:
 *
 *   x  [N,H,W,Cin]  -> [Cin,H,W,N]    (Cin becomes the batch)
 *   dy [N,OH,OW,Co] -> [OH,OW,N,Co]   (dy becomes an OHxOW filter)
 *   Conv2D, dilation = forward stride, explicit padding -> [Cin,KH,KW,Co] -> [KH,KW,Cin,Co]
 *
 * Correlating x with dy this way needs no extra memory beyond two transposed copies and runs
 * on XNNPACK. 'valid' convolutions whose stride skips the input's last rows or columns give
 * a slightly larger result, cropped with Slice.
 */
export function filterGradientByConv(
  backend: WasmBackendLike,
  x: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
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
        {
          begin: [0, 0, 0, 0],
          size: [info.inChannels, filterHeight, filterWidth, info.outChannels],
        },
      );
      gradient = cropped;
    }
    return callWasmKernel(Transpose, backend, { x: gradient }, { perm: [1, 2, 0, 3] });
  } finally {
    freeAll(backend, [xT, dyT, correlated, cropped]);
  }
}
