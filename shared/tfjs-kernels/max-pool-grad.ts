import { backend_util } from '@tensorflow/tfjs';
import type { KernelFunc, MaxPoolGradAttrs, TensorInfo } from '@tensorflow/tfjs';
import type { KernelArgs, WasmBackendLike } from './wasm-kernel-call';

type Shape4 = [number, number, number, number];
/** A float32 tensor's values, viewed on the wasm heap. */
type HeapArray = ReturnType<WasmBackendLike['typedArrayFromHeap']>;

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
  if (isHalvingPool(info)) {
    halvingPoolGrad(x, g, dx, info);
    return dxInfo;
  }
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

/**
 * The pooling every built-in network uses: 2x2 windows, stride 2, no padding and no dilation,
 * so each window is whole and the windows tile the input without overlap.
 */
function isHalvingPool(info: backend_util.Conv2DInfo): boolean {
  return (
    info.effectiveFilterHeight === 2 &&
    info.effectiveFilterWidth === 2 &&
    info.strideHeight === 2 &&
    info.strideWidth === 2 &&
    info.padInfo.top === 0 &&
    info.padInfo.left === 0 &&
    2 * info.outHeight <= info.inHeight &&
    2 * info.outWidth <= info.inWidth
  );
}

/**
 * MaxPoolGrad of a 2x2/2 pooling: the four candidates of each window compared in registers
 * rather than through per-window scratch arrays (2-3x faster per step). Same choice as the
 * general loop: the first strict maximum in row-major order, starting from -Infinity, so a
 * window of NaNs passes no gradient. `dx` arrives zeroed.
 */
function halvingPoolGrad(
  x: HeapArray,
  g: HeapArray,
  dx: HeapArray,
  info: backend_util.Conv2DInfo,
): void {
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const rowStride = inWidth * channels;
  let gAt = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const rowBase = (b * inHeight + 2 * oy) * rowStride;
      for (let ox = 0; ox < outWidth; ox++) {
        const a0 = rowBase + 2 * ox * channels;
        for (let c = 0; c < channels; c++, gAt++) {
          const p0 = a0 + c;
          const p1 = p0 + channels;
          const p2 = p0 + rowStride;
          const p3 = p2 + channels;
          let best = -Infinity;
          let at = -1;
          const v0 = x[p0]!;
          if (v0 > best) {
            best = v0;
            at = p0;
          }
          const v1 = x[p1]!;
          if (v1 > best) {
            best = v1;
            at = p1;
          }
          const v2 = x[p2]!;
          if (v2 > best) {
            best = v2;
            at = p2;
          }
          if (x[p3]! > best) at = p3;
          if (at >= 0) dx[at] = g[gAt]!;
        }
      }
    }
  }
}
