import { Coordinator } from '../../coordinator/coordinator';
import { openStore } from '../../coordinator/persistence/store';
import type { StoredCheckpoint } from '../../coordinator/persistence/store-types';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import { createStrategy } from '../../shared/strategies/create-strategy';
import { bytesToFloats, floatsToBytes } from '../../shared/weights/codec';
import { connectScriptedClient } from '../helpers/scripted-client';
import type { ScriptedClient } from '../helpers/scripted-client';
import {
  ScriptedFederation,
  maxAbsDifference,
  scriptedDelta,
} from '../helpers/scripted-federation';

/**
 * A coordinator restarted on the same SQLite database resumes from its checkpoint: the first
 * fit request after restart carries the stored model, and the first update uses the restored
 * FedAvgM velocity.
 */

const federation = new ScriptedFederation('resume');

const TRAIN = [10, 30, 60];
const SERVER_LR = 0.7;

interface Seen {
  round: number;
  hash: string;
  weights: Float32Array;
}

async function runCoordinator(database: string, rounds: number, seen: Seen[]) {
  const coordinator = await Coordinator.start(
    {
      host: '127.0.0.1',
      port: 0,
      secureAggregation: false,
      rounds,
      minClients: 3,
      overSelection: 0,
      evaluation: 'none',
      experiment: 'resume',
      database,
      seed: 9,
      roundTimeoutMs: 30_000,
      strategy: 'fedavgm',
      serverLearningRate: SERVER_LR,
    },
    { testSet: null },
  );
  federation.track(coordinator);
  const mine: ScriptedClient[] = [];
  for (let i = 0; i < 3; i++) {
    const client = await connectScriptedClient(
      coordinator.url,
      {
        fit: (ins) => {
          const model = ins.model as { modelHash: string; weights: Uint8Array };
          const round = ins.round as number;
          const weights = bytesToFloats(new Uint8Array(model.weights));
          if (i === 0) seen.push({ round, hash: model.modelHash, weights });
          return {
            status: 'ok',
            roundId: ins.roundId,
            modelHash: model.modelHash,
            numExamples: TRAIN[i],
            trainLoss: 1,
            update: floatsToBytes(scriptedDelta(i, round, weights.length)),
          };
        },
      },
      { trainExamples: TRAIN[i] },
    );
    federation.trackClient(client);
    mine.push(client);
    await client.registered;
  }
  const history = await coordinator.done;
  await coordinator.stop();
  for (const c of mine) c.close();
  return history;
}

async function latest(database: string): Promise<StoredCheckpoint> {
  const store = await openStore(database);
  try {
    const opened = await store.openExperiment({
      name: 'resume',
      task: 'mnist',
      config: {},
      modelSpecHash: await specHash(getModelSpec('mnist')),
    });
    return (await store.latestCheckpoint(opened.experimentId))!;
  } finally {
    await store.close();
  }
}

function meanOf(round: number, length: number): Float32Array {
  const total = TRAIN.reduce((a, b) => a + b, 0);
  const deltas = TRAIN.map((_, i) => scriptedDelta(i, round, length));
  const out = new Float32Array(length);
  for (let j = 0; j < length; j++) {
    out[j] = deltas.reduce((s, d, i) => s + d[j]! * TRAIN[i]!, 0) / total;
  }
  return out;
}

test('a restarted coordinator sends the stored checkpoint and applies the restored momentum', async () => {
  const database = federation.database('resume.db');
  const before: Seen[] = [];
  const first = await runCoordinator(database, 2, before);
  expect(first.rounds.map((r) => r.status)).toEqual(['completed', 'completed']);
  const stored = await latest(database);
  expect(stored.round).toBe(2);
  const storedWeights = bytesToFloats(new Uint8Array(stored.weights));
  const storedState = bytesToFloats(new Uint8Array(stored.strategyState));
  const initial = before.find((s) => s.round === 1)!;

  const after: Seen[] = [];
  const second = await runCoordinator(database, 3, after);
  expect(second.rounds.map((r) => r.round)).toEqual([3]);
  expect(second.rounds[0]!.status).toBe('completed');
  const resumed = after.find((s) => s.round === 3)!;
  expect(resumed.hash).toBe(stored.modelHash);
  expect(resumed.hash).not.toBe(initial.hash);
  expect(maxAbsDifference(resumed.weights, storedWeights)).toBe(0);

  const strategy = createStrategy({ name: 'fedavgm', serverLr: SERVER_LR });
  const length = storedWeights.length;
  const expected = strategy.aggregateFit(
    { global: storedWeights, meanDelta: meanOf(3, length), round: 3 },
    storedState,
  );
  const next = await latest(database);
  expect(next.round).toBe(3);
  const nextWeights = bytesToFloats(new Uint8Array(next.weights));
  expect(maxAbsDifference(nextWeights, expected.weights)).toBeLessThan(1e-5);
  expect(
    maxAbsDifference(bytesToFloats(new Uint8Array(next.strategyState)), expected.state),
  ).toBeLessThan(1e-5);
  // Teeth: with the velocity reset to zero the update would differ.
  const fresh = strategy.aggregateFit(
    { global: storedWeights, meanDelta: meanOf(3, length), round: 3 },
    strategy.initialState(length),
  );
  expect(maxAbsDifference(nextWeights, fresh.weights)).toBeGreaterThan(1e-3);
}, 60_000);
