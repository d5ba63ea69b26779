/**
 * What secure aggregation costs a client in CPU beside its training: quantizing its update and
 * adding the self mask and one pairwise mask per neighbour (key agreement and signatures are
 * left out: they do not grow with the model). The training suite sets it against one local
 * epoch, the yardstick ("masking at most 20% of an epoch").
 */
import { performance } from 'node:perf_hooks';
import { addMask, chooseSecAggParams, quantizeWeightedUpdate } from '../../shared/secagg';

/** Median milliseconds of one client's masking for `params` parameters and `neighbours`. */
export async function maskingMs(params: number, neighbours: number, runs = 3): Promise<number> {
  const config = chooseSecAggParams(neighbours + 1, {
    vectorLength: params,
    clipRange: 4,
    modulusBits: 'auto',
  });
  const update = new Float32Array(params).map((_, i) => Math.sin(i) * 0.01);
  const seeds = Array.from({ length: neighbours + 1 }, (_, i) =>
    new Uint8Array(32).map((_, j) => (i * 13 + j) & 0xff),
  );
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    const vector = quantizeWeightedUpdate({ update, exampleCount: 1000, trainLoss: 1 }, config);
    for (const [i, seed] of seeds.entries()) await addMask(vector, seed, i % 2 === 0 ? 1 : -1);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
