import type { ModelSpec } from '../model/spec';
import { createRng } from '../random';
import type { Dataset } from './dataset';

/**
 * Seeded random examples of a model's input shape, labels cycling through its classes: what
 * throughput measurements (the join page's backend race, the benchmarks) train on, since
 * pixel values do not change how fast a step runs. Never training data for real.
 */
export function randomDataset(spec: ModelSpec, count: number, seed = 7): Dataset {
  const [h, w, c] = spec.input;
  const rng = createRng(seed);
  const images = new Float32Array(count * h * w * c);
  for (let i = 0; i < images.length; i++) images[i] = rng.next();
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = i % spec.classes;
  return { images, labels, count, shape: [h, w, c], classes: spec.classes };
}
