/**
 * Worker thread of the {@link UnmaskWorkerPool}: given the mask terms of a round and one slice
 * of the vector, it expands each mask over that slice only (AES-CTR seeks by block) and sends
 * back the slice of sum(sign * PRG(seed)). It holds seeds only while it works and wipes them.
 */
import { parentPort } from 'node:worker_threads';
import { SEED_LENGTH, addMask } from '../shared/secagg/prg';
import { allocateWrapVector } from '../shared/simd/kernels';
import { errorMessage } from '../shared/errors';
import type { SliceRequest, SliceResponse } from './unmask-slice-messages';

const port = parentPort;
if (!port) throw new Error('unmask-worker.js must run in a worker thread');

port.on('message', (request: SliceRequest) => {
  void computeSlice(request).then((response) => {
    port.postMessage(response, response.ok ? [response.sum.buffer] : []);
  });
});

async function computeSlice(request: SliceRequest): Promise<SliceResponse> {
  const { id, start, length, seeds, signs } = request;
  try {
    const sum = allocateWrapVector(length); // SIMD kernel memory: masks are added vectorized
    for (let i = 0; i < signs.length; i++) {
      const seed = seeds.subarray(i * SEED_LENGTH, (i + 1) * SEED_LENGTH);
      await addMask(sum, seed, signs[i] === 1 ? 1 : -1, undefined, start);
    }
    // A copy: a wasm memory's buffer cannot be transferred, and the copy is one pass.
    return { id, ok: true, sum: new Uint32Array(sum) };
  } catch (error) {
    return { id, ok: false, message: errorMessage(error) };
  } finally {
    seeds.fill(0);
  }
}
