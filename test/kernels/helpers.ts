import * as tf from '@tensorflow/tfjs';

/** Deterministic pseudo-random values in [-1, 1) so cpu and wasm see identical inputs. */
export function randomValues(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** max |a - b| divided by max |b|: a scale-free distance between two gradients. */
export function maxRelativeDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst / Math.max(scale, 1e-12);
}

/** A random tensor of `shape`, reproducible from `seed`. */
export function randomTensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(
    randomValues(
      shape.reduce((p, q) => p * q, 1),
      seed,
    ),
    shape,
  );
}

/** Runs `fn` after switching tfjs to backend `name`. */
export async function onBackend<T>(name: string, fn: () => T): Promise<T> {
  await tf.setBackend(name);
  return fn();
}

export type Padding =
  'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

/** One conv2d configuration whose gradients the tests compare across backends. */
export interface ConvCase {
  x: [number, number, number, number];
  k: [number, number];
  cout: number;
  stride: number;
  pad: Padding;
}

/** Gradients of sum(conv2d(x, w) * r) with respect to x and w, on the current backend. */
export function convGradients(c: ConvCase): { dx: Float32Array; dw: Float32Array } {
  return tf.tidy(() => {
    const x = randomTensor(c.x, 1) as tf.Tensor4D;
    const filter = randomTensor([c.k[0], c.k[1], c.x[3], c.cout], 2) as tf.Tensor4D;
    const r = randomTensor(tf.conv2d(x, filter, c.stride, c.pad).shape, 3);
    const f = (a: tf.Tensor, b: tf.Tensor): tf.Scalar =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), r));
    const [dx, dw] = tf.grads(f)([x, filter]);
    return { dx: dx!.dataSync() as Float32Array, dw: dw!.dataSync() as Float32Array };
  });
}
