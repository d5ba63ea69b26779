/**
 * A worker thread of {@link WorkerGradientHelpers}: its own tfjs wasm instance and copy of the
 * model, which computes summed cross-entropy gradients over parts of a batch at the weights it
 * is sent. It never updates weights itself: the optimizer runs once, on the main thread.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort } from 'node:worker_threads';
import type { Dataset } from '../../shared/data/dataset';
import { errorMessage } from '../../shared/errors';
import { buildModel } from '../../shared/model/build-model';
import { makeBatch } from '../../shared/training/batches';
import { selectBackend } from '../backend/select-backend';
import type { GradientWorkerRequest, GradientWorkerResponse } from './gradient-messages';

const port = parentPort;
if (!port) throw new Error('gradient-worker.js must run in a worker thread');

let model: tf.LayersModel | undefined;
let variables: tf.Variable[] = [];
let data: Dataset | undefined;
// Requests are handled one at a time, in order (init is asynchronous).
let queue: Promise<void> = Promise.resolve();

port.on('message', (request: GradientWorkerRequest) => {
  queue = queue.then(() => handle(request));
});

async function handle(request: GradientWorkerRequest): Promise<void> {
  const id = request.type === 'compute' ? request.id : -1;
  try {
    if (request.type === 'init') {
      await selectBackend({ preferred: request.backend });
      model = buildModel(request.spec);
      variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
      reply({ type: 'ready', id: -1 });
    } else if (request.type === 'data') {
      data = { ...request };
    } else {
      const result = compute(request.weights, request.parts, request.id);
      reply(result, result.type === 'result' ? [result.gradient.buffer] : []);
    }
  } catch (error) {
    reply({ type: 'error', id, message: errorMessage(error) });
  }
}

function compute(
  weights: Float32Array,
  parts: readonly number[][],
  id: number,
): GradientWorkerResponse {
  if (!model || !data) throw new Error('the gradient worker has no model or data yet');
  let total = 0;
  for (const v of variables) total += v.size;
  if (total !== weights.length) {
    throw new Error(`${weights.length} weights sent for a model of ${total}`);
  }
  tf.tidy(() => {
    let offset = 0;
    for (const v of variables) {
      v.assign(tf.tensor(weights.subarray(offset, offset + v.size), v.shape));
      offset += v.size;
    }
  });
  const gradient = new Float32Array(weights.length);
  let lossSum = 0;
  for (const part of parts) {
    if (part.length === 0) continue;
    const { xs, ys } = makeBatch(data, part, data.classes);
    try {
      const { value, grads } = tf.variableGrads(() => {
        const logits = model!.apply(xs, { training: true }) as tf.Tensor2D;
        return tf.losses.softmaxCrossEntropy<tf.Tensor2D, tf.Scalar>(
          ys,
          logits,
          undefined,
          undefined,
          tf.Reduction.SUM,
        );
      }, variables);
      lossSum += value.dataSync()[0]!;
      let at = 0;
      for (const v of variables) {
        const g = grads[v.name]!.dataSync() as Float32Array;
        for (let i = 0; i < g.length; i++) gradient[at + i]! += g[i]!;
        at += g.length;
      }
      tf.dispose([value, ...Object.values(grads)]);
    } finally {
      tf.dispose([xs, ys]);
    }
  }
  return { type: 'result', id, gradient, lossSum };
}

function reply(response: GradientWorkerResponse, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(response, transfer);
}
