import { Coordinator } from '../../coordinator/coordinator';
import { openStore } from '../../coordinator/persistence/store';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import { createStrategy } from '../../shared/strategies/create-strategy';
import type { StrategyName } from '../../shared/strategies/strategy';
import { bytesToFloats, floatsToBytes } from '../../shared/weights/codec';
import { connectScriptedClient } from '../helpers/scripted-client';
import {
  ScriptedFederation,
  maxAbsDifference,
  scriptedDelta,
} from '../helpers/scripted-federation';

/**
 * The configured strategy is the one applied: over 2 real-socket rounds of scripted clients
 * with known deltas, each new global model (and the server optimizer state in the checkpoint)
 * equals the strategy's pure function applied to the previous model and the round's mean.
 */

const federation = new ScriptedFederation('strategy');

const TRAIN = [10, 30, 60];

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
      const database = federation.database(`${name}.db`);
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
      federation.track(coordinator);

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
              const delta = scriptedDelta(i, round, weights.length);
              const list = deltas.get(round) ?? [];
              list[i] = delta;
              deltas.set(round, list);
              return {
                status: 'ok',
                roundId: ins.roundId,
                modelHash: model.modelHash,
                numExamples: TRAIN[i],
                trainLoss: 1,
                update: floatsToBytes(delta),
              };
            },
          },
          { trainExamples: TRAIN[i] },
        );
        federation.trackClient(client);
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
      expect(maxAbsDifference(g1, r1.weights)).toBeLessThan(1e-5);
      const r2 = strategy.aggregateFit({ global: g1, meanDelta: meanOf(2), round: 2 }, r1.state);
      expect(maxAbsDifference(finalWeights, r2.weights)).toBeLessThan(1e-5);
      expect(finalState.length).toBe(r2.state.length);
      if (r2.state.length > 0) expect(maxAbsDifference(finalState, r2.state)).toBeLessThan(1e-5);

      // Teeth: a strategy other than FedAvg would not have produced this model.
      const fedavg = createStrategy({ name: 'fedavg' });
      const plain2 = fedavg.aggregateFit(
        { global: g1, meanDelta: meanOf(2), round: 2 },
        new Float32Array(0),
      );
      if (name === 'fedavg' || name === 'fedprox') {
        expect(maxAbsDifference(finalWeights, plain2.weights)).toBeLessThan(1e-5);
      } else {
        expect(maxAbsDifference(finalWeights, plain2.weights)).toBeGreaterThan(1e-3);
      }
      // FedProx is told to the clients: the fit config carries its mu (0 otherwise).
      const mu = name === 'fedprox' ? extra.proximalMu : 0;
      expect(mus.get(1)).toBe(mu);
      expect(mus.get(2)).toBe(mu);
    },
    60_000,
  );
});
