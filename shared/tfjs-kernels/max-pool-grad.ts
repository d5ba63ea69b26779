import { backend_util } from '@tensorflow/tfjs';
import type { KernelFunc, MaxPoolGradAttrs, TensorInfo } from '@tensorflow/tfjs';
import type { KernelArgs, WasmBackendLike } from './wasm-kernel-call';

type Shape4 = [number, number, number, number];

/**
 * MaxPoolGrad over the wasm heap in plain JS: one pass finds each window's first maximum and
 * adds dy there. For the usual non-overlapping 2x2/2 pooling it was measured faster than the
 * wasm kernel (86 -> 31 ms per step); it also serves overlapping windows, where the wasm
 * kernel (4.22) drops the gradient of windows whose values are all negative. Ties go to the
 * first maximum in row-major order, as on the cpu backend. Non-float inputs go to `original`.
 */
export function makeMaxPoolGradWasm(original: KernelFunc): KernelFunc {
  return (args) => maxPoolGradWasm(args, original);
}

function maxPoolGradWasm(args: KernelArgs, original: KernelFunc): TensorInfo | TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
  const attrs = args.attrs as unknown as MaxPoolGradAttrs;
  const info = backend_util.computePool2DInfo(
    input.shape as Shape4,
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  if (input.dtype !== 'float32' || dy.dtype !== 'float32') return original(args);

  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  // Allocate first: a wasm allocation may grow the heap and detach earlier views.
  const dxInfo = backend.makeOutput(input.shape, 'float32');
  const dx = backend.typedArrayFromHeap(dxInfo);
  const x = backend.typedArrayFromHeap(input);
  const g = backend.typedArrayFromHeap(dy);
  dx.fill(0);
  const best = new Float32Array(channels);
  const bestAt = new Int32Array(channels);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * info.strideHeight - info.padInfo.top;
      const yStart = Math.max(0, y0);
      const yEnd = Math.min(inHeight, y0 + info.effectiveFilterHeight);
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * info.strideWidth - info.padInfo.left;
        const xStart = Math.max(0, x0);
        const xEnd = Math.min(inWidth, x0 + info.effectiveFilterWidth);
        best.fill(-Infinity);
        bestAt.fill(-1);
        for (let y = yStart; y < yEnd; y++) {
          for (let xx = xStart; xx < xEnd; xx++) {
            const base = ((b * inHeight + y) * inWidth + xx) * channels;
            for (let c = 0; c < channels; c++) {
              const v = x[base + c]!;
              if (v > best[c]!) {
                best[c] = v;
                bestAt[c] = base + c;
              }
            }
          }
        }
        const gBase = ((b * outHeight + oy) * outWidth + ox) * channels;
        for (let c = 0; c < channels; c++) {
          const at = bestAt[c]!;
          if (at >= 0) dx[at] = dx[at]! + g[gBase + c]!;
        }
      }
    }
  }
  return dxInfo;
}
