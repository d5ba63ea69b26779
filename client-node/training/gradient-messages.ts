/** Messages between {@link WorkerGradientHelpers} and its gradient workers, declared once. */
import type { ModelSpec } from '../../shared/model/spec';

/** Main thread to worker. */
export type GradientWorkerRequest =
  /** Build the model on this backend (first message). */
  | { type: 'init'; spec: ModelSpec; backend: 'wasm' | 'cpu' }
  /** The training data the parts of later steps index into (shared memory, not copied). */
  | {
      type: 'data';
      images: Float32Array;
      labels: Uint8Array;
      count: number;
      shape: readonly [number, number, number];
      classes: number;
    }
  /** Sum the cross-entropy gradients of the examples of `parts` at `weights`. */
  | { type: 'compute'; id: number; weights: Float32Array<ArrayBuffer>; parts: number[][] };

/** Worker to main thread. */
export type GradientWorkerResponse =
  | { type: 'ready'; id: -1 }
  | { type: 'result'; id: number; gradient: Float32Array<ArrayBuffer>; lossSum: number }
  | { type: 'error'; id: number; message: string };
