import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator } from '../../coordinator/coordinator';
import { openStore } from '../../coordinator/persistence/store';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import { createStrategy } from '../../shared/strategies/create-strategy';
import type { StrategyName } from '../../shared/strategies/strategy';
import { bytesToFloats } from '../../shared/weights/codec';
import { connectScriptedClient } from '../helpers/scripted-client';
import type { ScriptedClient } from '../helpers/scripted-client';

/**
 * The configured strategy is the one applied: over 2 real-socket rounds of scripted clients
 * with known deltas, each new global model (and the server optimizer state in the checkpoint)
 * equals the strategy's pure function applied to the previous model and the round's mean.
 */

let dir: string;
let coordinators: Coordinator[] = [];
let scripted: ScriptedClient[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-strategy-'));
});
afterEach(async () => {
  for (const c of scripted) c.close();
  scripted = [];
  for (const c of coordinators) await c.stop();
  coordinators = [];
  rmSync(dir, { recursive: true, force: true });
});

const TRAIN = [10, 30, 60];

function toBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

function deltaOf(client: number, round: number, length: number): Float32Array {
  const out = new Float32Array(length);
  for (let j = 0; j < length; j++) {
    out[j] = (client + 1) * 0.01 * Math.sin(j * 0.37 + client + round * 1.3);
  }
  return out;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let j = 0; j < a.length; j++) m = Math.max(m, Math.abs(a[j]! - b[j]!));
  return m;
}

const CASES: ReadonlyArray<[StrategyName, { serverLearningRate?: number; proximalMu?: number }]> = [
  ['fedavg', {}],
  ['fedavgm', { serverLearningRate: 0.7 }],
  ['fedadam', { serverLearningRate: 0.03 }],
  ['fedyogi', { serverLearningRate: 0.03 }],
  ['fedprox', { proximalMu: 0.05 }],
];

describe('strategy wiring', () => {
  test.each(CASES)(
    '%s: both rounds follow the strategy function',
    async (name, extra) => {
      const database = `file:${join(dir, `${name}.db`)}`;
      const coordinator = await Coordinator.start(
        {
          host: '127.0.0.1',
          port: 0,
          secureAggregation: false,
          rounds: 2,
          minClients: 3,
          overSelection: 0,
          evaluation: 'none',
          experiment: `wiring-${name}`,
          database,
          seed: 9,
          roundTimeoutMs: 30_000,
          strategy: name,
          ...extra,
        },
        { testSet: null },
      );
      coordinators.push(coordinator);

      /** Per round: the global model it started from, the fit config, and each client's delta. */
      const globals = new Map<number, Float32Array>();
      const mus = new Map<number, number>();
      const deltas = new Map<number, Float32Array[]>();
      for (let i = 0; i < 3; i++) {
        const client = await connectScriptedClient(
          coordinator.url,
          {
            fit: (ins) => {
              const model = ins.model as { modelHash: string; weights: Uint8Array };
              const round = ins.round as number;
              const weights = bytesToFloats(new Uint8Array(model.weights));
              globals.set(round, weights);
              mus.set(round, (ins.config as { proximalMu: number }).proximalMu);
              const delta = deltaOf(i, round, weights.length);
              const list = deltas.get(round) ?? [];
              list[i] = delta;
              deltas.set(round, list);
              return {
                status: 'ok',
                roundId: ins.roundId,
                modelHash: model.modelHash,
                numExamples: TRAIN[i],
                trainLoss: 1,
                update: toBytes(delta),
              };
            },
          },
          { trainExamples: TRAIN[i] },
        );
        scripted.push(client);
        await client.registered;
      }
      const history = await coordinator.done;
      expect(history.rounds.map((r) => r.status)).toEqual(['completed', 'completed']);

      const store = await openStore(database);
      let finalWeights: Float32Array;
      let finalState: Float32Array;
      try {
        const opened = await store.openExperiment({
          name: `wiring-${name}`,
          task: 'mnist',
          config: {},
          modelSpecHash: await specHash(getModelSpec('mnist')),
        });
        const checkpoint = (await store.latestCheckpoint(opened.experimentId))!;
        expect(checkpoint.round).toBe(2);
        finalWeights = bytesToFloats(new Uint8Array(checkpoint.weights));
        finalState = bytesToFloats(new Uint8Array(checkpoint.strategyState));
      } finally {
        await store.close();
      }

      const total = TRAIN.reduce((a, b) => a + b, 0);
      const meanOf = (round: number): Float32Array => {
        const list = deltas.get(round)!;
        const out = new Float32Array(list[0]!.length);
        for (let j = 0; j < out.length; j++) {
          out[j] = list.reduce((s, d, i) => s + d[j]! * TRAIN[i]!, 0) / total;
        }
        return out;
      };
      const strategy = createStrategy({
        name,
        serverLr: extra.serverLearningRate,
        proximalMu: extra.proximalMu,
      });
      const g0 = globals.get(1)!;
      const g1 = globals.get(2)!;
      const r1 = strategy.aggregateFit(
        { global: g0, meanDelta: meanOf(1), round: 1 },
        strategy.initialState(g0.length),
      );
      expect(maxDiff(g1, r1.weights)).toBeLessThan(1e-5);
      const r2 = strategy.aggregateFit({ global: g1, meanDelta: meanOf(2), round: 2 }, r1.state);
      expect(maxDiff(finalWeights, r2.weights)).toBeLessThan(1e-5);
      expect(finalState.length).toBe(r2.state.length);
      if (r2.state.length > 0) expect(maxDiff(finalState, r2.state)).toBeLessThan(1e-5);

      // Teeth: a strategy other than FedAvg would not have produced this model.
      const fedavg = createStrategy({ name: 'fedavg' });
      const plain2 = fedavg.aggregateFit(
        { global: g1, meanDelta: meanOf(2), round: 2 },
        new Float32Array(0),
      );
      if (name === 'fedavg' || name === 'fedprox') {
        expect(maxDiff(finalWeights, plain2.weights)).toBeLessThan(1e-5);
      } else {
        expect(maxDiff(finalWeights, plain2.weights)).toBeGreaterThan(1e-3);
      }
      // FedProx is told to the clients: the fit config carries its mu (0 otherwise).
      const mu = name === 'fedprox' ? extra.proximalMu : 0;
      expect(mus.get(1)).toBe(mu);
      expect(mus.get(2)).toBe(mu);
    },
    60_000,
  );
});
