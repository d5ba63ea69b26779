import { Coordinator } from '../../coordinator/coordinator';
import { openStore } from '../../coordinator/persistence/store';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import { bytesToFloats, floatsToBytes } from '../../shared/weights/codec';
import { connectScriptedClient } from '../helpers/scripted-client';
import { ScriptedFederation, scriptedDelta } from '../helpers/scripted-federation';

/**
 * Plain-mode aggregation judged by its numbers: scripted socket clients of unequal sizes send
 * known deltas and accuracies, and the coordinator's new global model and federated accuracy
 * must be the example-weighted (capped) means of what they sent, not the unweighted ones.
 */

const federation = new ScriptedFederation('weighting');

const WEIGHT_CAP = 50;
/** Registered and reported train sizes; the last one exceeds the cap. */
const TRAIN = [10, 30, 400];
const TEST = [5, 20, 75];
const ACCURACY = [0.9, 0.5, 0.2];

function modelOf(ins: Record<string, unknown>): { hash: string; weights: Float32Array } {
  const model = ins.model as { modelHash: string; weights: Uint8Array };
  return { hash: model.modelHash, weights: bytesToFloats(new Uint8Array(model.weights)) };
}

test('plain FedAvg applies the capped example-weighted mean; federated accuracy is example-weighted', async () => {
  const database = federation.database('weighting.db');
  const coordinator = await Coordinator.start(
    {
      host: '127.0.0.1',
      port: 0,
      secureAggregation: false,
      rounds: 1,
      minClients: 3,
      overSelection: 0,
      weightCap: WEIGHT_CAP,
      evaluation: 'federated',
      experiment: 'weighting',
      database,
      seed: 5,
      roundTimeoutMs: 30_000,
    },
    { testSet: null },
  );
  federation.track(coordinator);

  const sentFrom: Array<Float32Array | null> = [null, null, null];
  const deltas: Float32Array[] = [];
  for (let i = 0; i < 3; i++) {
    const client = await connectScriptedClient(
      coordinator.url,
      {
        fit: (ins) => {
          const { hash, weights } = modelOf(ins);
          sentFrom[i] = weights;
          const delta = scriptedDelta(i, 0, weights.length);
          deltas[i] = delta;
          return {
            status: 'ok',
            roundId: ins.roundId,
            modelHash: hash,
            numExamples: TRAIN[i],
            trainLoss: 1,
            update: floatsToBytes(delta),
          };
        },
        evaluate: (ins) => ({
          status: 'ok',
          roundId: ins.roundId,
          numExamples: TEST[i],
          loss: 1 + i,
          accuracy: ACCURACY[i],
        }),
      },
      { trainExamples: TRAIN[i], registerOverride: { testExamples: TEST[i] } },
    );
    federation.trackClient(client);
    await client.registered;
  }
  const history = await coordinator.done;
  expect(history.rounds.map((r) => r.status)).toEqual(['completed']);

  const global = sentFrom[0]!;
  expect(sentFrom[1]).toEqual(global);
  expect(sentFrom[2]).toEqual(global);

  const store = await openStore(database);
  let after: Float32Array;
  try {
    const opened = await store.openExperiment({
      name: 'weighting',
      task: 'mnist',
      config: {},
      modelSpecHash: await specHash(getModelSpec('mnist')),
    });
    const checkpoint = await store.latestCheckpoint(opened.experimentId);
    expect(checkpoint?.round).toBe(1);
    after = bytesToFloats(new Uint8Array(checkpoint!.weights));
  } finally {
    await store.close();
  }

  const weights = TRAIN.map((n) => Math.min(n, WEIGHT_CAP)); // 10, 30, 50
  const total = weights.reduce((a, b) => a + b, 0);
  let weightedErr = 0;
  let unweightedErr = 0;
  let uncappedErr = 0;
  const uncappedTotal = TRAIN.reduce((a, b) => a + b, 0);
  for (let j = 0; j < global.length; j++) {
    const weighted = deltas.reduce((s, d, i) => s + d[j]! * weights[i]!, 0) / total;
    const unweighted = deltas.reduce((s, d) => s + d[j]!, 0) / 3;
    const uncapped = deltas.reduce((s, d, i) => s + d[j]! * TRAIN[i]!, 0) / uncappedTotal;
    const got = after[j]! - global[j]!;
    weightedErr = Math.max(weightedErr, Math.abs(got - weighted));
    unweightedErr = Math.max(unweightedErr, Math.abs(got - unweighted));
    uncappedErr = Math.max(uncappedErr, Math.abs(got - uncapped));
  }
  expect(weightedErr).toBeLessThan(1e-5);
  // Teeth: the unweighted and the uncapped means are far from what was applied.
  expect(unweightedErr).toBeGreaterThan(1e-3);
  expect(uncappedErr).toBeGreaterThan(1e-3);

  const round = history.rounds[0]!;
  const testTotal = TEST.reduce((a, b) => a + b, 0);
  const weightedAccuracy = ACCURACY.reduce((s, a, i) => s + a * TEST[i]!, 0) / testTotal;
  const unweightedAccuracy = ACCURACY.reduce((s, a) => s + a, 0) / 3;
  expect(round.evaluation).toBe('federated');
  expect(round.federatedAccuracy).toBeCloseTo(weightedAccuracy, 6);
  expect(Math.abs(weightedAccuracy - unweightedAccuracy)).toBeGreaterThan(0.1);
}, 60_000);
