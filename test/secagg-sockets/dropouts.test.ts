import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator } from '../../coordinator/coordinator';
import type { Dataset } from '../../shared/data/dataset';
import { bytesToFloats } from '../../shared/weights/codec';
import { useWasmBackend } from '../helpers/backend';
import { smallMnist } from '../helpers/mnist-fixture';
import {
  difference,
  exampleWeightedLoss,
  exampleWeightedMean,
  initialGlobal,
  maxAbs,
  maxAbsDiff,
  secAggTolerance,
  totalExamples,
} from '../helpers/secagg-expectations';
import { readPersistedRun } from '../helpers/persisted-rounds';
import type { ProbedClient, SecAggPhaseName } from '../helpers/secagg-probe';
import { closeProbedClients, startProbedClients } from '../helpers/secagg-probe';

/**
 * Secure aggregation on real sockets (Coordinator on 127.0.0.1, real Node clients on the wasm
 * backend): one of five clients is lost after each phase, and the round must still complete
 * with exactly the example-weighted mean of the clients whose masked input was summed (and
 * their example-weighted mean train loss, which travels inside the masked vector). With five
 * clients the complete graph has t = max(3, ceil(10/3)) = 4, so one loss is tolerated; every
 * client advertised keys, so each sees 5 participants, the default minimum it requires. The
 * coordinator never learns one client's example count or loss: the database records none.
 */

const SEED = 5;
/** Different shard sizes, so the example-weighted mean differs from the plain one. */
const SIZES = [40, 60, 80, 100, 120];
const LOST = 2;

let backend: string;
let data: { train: Dataset; test: Dataset };
let dir: string;
let clients: ProbedClient[] = [];
let coordinator: Coordinator | undefined;

beforeAll(async () => {
  backend = await useWasmBackend();
  data = await smallMnist(400, 50);
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-secagg-drop-'));
});
afterEach(async () => {
  closeProbedClients(clients);
  clients = [];
  await coordinator?.stop();
  coordinator = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('secure aggregation survives a client lost after each phase (real sockets)', () => {
  // 32 bits, where the quantization bound is fine enough for the 20x checks below that the
  // wrong client set is far off; and the coordinator's default (auto: 24 bits for 5 clients
  // of the defaults), where masked inputs travel packed at 3 bytes an element.
  it.each([
    ['after AdvertiseKeys (gone before ShareKeys)', 'shareKeys', false, '32'],
    ['after ShareKeys (gone before MaskedInput)', 'maskedInput', false, '32'],
    ['after MaskedInput (gone before ConsistencyCheck)', 'consistencyCheck', true, '32'],
    ['during Unmasking', 'unmasking', true, '32'],
    ['after MaskedInput (gone before ConsistencyCheck)', 'consistencyCheck', true, 'auto'],
  ] as [string, SecAggPhaseName, boolean, '32' | 'auto'][])(
    'a client lost %s: the round completes with the survivors’ weighted mean (%s, summed: %s, %s bits)',
    async (_label, phase, inputSummed, secureBits) => {
      const experiment = `drop-at-${phase}-${secureBits}`;
      const database = `file:${join(dir, 'run.db')}`;
      coordinator = await Coordinator.start({
        host: '127.0.0.1',
        port: 0,
        experiment,
        rounds: 1,
        minClients: SIZES.length,
        overSelection: 0,
        batchSize: 32,
        learningRate: 0.1,
        seed: SEED,
        evaluation: 'none',
        roundTimeoutMs: 120_000,
        phaseTimeoutMs: 60_000,
        database,
        secureBits,
      });
      clients = await startProbedClients(coordinator.url, backend, data, SIZES, (i) =>
        i === LOST ? { faults: { vanishAt: { phase } } } : {},
      );
      const { coordinatorId } = coordinator;
      const history = await coordinator.done;
      await coordinator.stop();

      const lost = clients[LOST]!;
      // A client whose masked input was summed before it left is in the mean (Bonawitz U3).
      const survivors = inputSummed ? clients : clients.filter((c) => c !== lost);
      expect(history.rounds).toHaveLength(1);
      expect(history.rounds[0]).toMatchObject({
        round: 1,
        status: 'completed',
        selected: SIZES.length,
        participants: survivors.length,
        secureAggregation: 'on',
        failureReason: null,
      });
      expect(lost.probe.vanished).toBe(true);

      const initial = await initialGlobal(SEED);
      const updates = survivors.map((c) => c.probe.updateOf(1));
      for (const u of updates) {
        expect(u.modelHash).toBe(initial.hash);
        // Each client bound the round to the coordinator's key and experiment it registered with.
        expect(u).toMatchObject({ coordinatorId, experiment });
        // Clipping at clipRange 4 must not have touched the updates, or the means would differ.
        expect(maxAbs(u.delta)).toBeLessThan(4);
      }
      expect(updates.map((u) => u.numExamples)).toEqual(
        survivors.map((c) => SIZES[clients.indexOf(c)]),
      );

      const { rounds, checkpoint } = await readPersistedRun(database, experiment);
      expect(checkpoint?.round).toBe(1);
      const applied = difference(bytesToFloats(checkpoint!.weights), initial.weights);
      const expected = exampleWeightedMean(updates);
      const modulusBits = secureBits === 'auto' ? 24 : 32;
      for (const c of clients) expect(c.probe.modulusBits).toEqual([modulusBits]);
      // Every masked input sent: vectorLength + 2 elements of b / 8 bytes.
      for (const c of survivors) {
        expect(c.probe.maskedInputBytes).toEqual([
          ((initial.weights.length + 2) * modulusBits) / 8,
        ]);
      }
      const { tolerance, lossTolerance } = secAggTolerance({
        cohort: SIZES.length,
        vectorLength: initial.weights.length,
        survivors: updates.length,
        totalWeight: totalExamples(updates),
        modulusBits,
      });
      expect(maxAbsDiff(applied, expected)).toBeLessThan(tolerance);
      // The same bound holds for the loss (one more masked element, weighted the same way).
      const expectedLoss = exampleWeightedLoss(updates);
      expect(updates.every((u) => u.trainLoss > 0 && u.trainLoss < 4)).toBe(true);
      expect(Math.abs(history.rounds[0]!.trainLoss! - expectedLoss)).toBeLessThan(lossTolerance);
      // The check has teeth: the wrong client set, or an unweighted mean, is far off (at 32
      // bits; 24 bits' bound is too coarse to tell these means apart by 20x).
      const teeth = modulusBits === 32 ? 20 : 0;
      const everyone = exampleWeightedMean(clients.map((c) => c.probe.updateOf(1)));
      const wrongSet = inputSummed
        ? exampleWeightedMean(updates.filter((u) => u !== lost.probe.updateOf(1)))
        : everyone;
      expect(maxAbsDiff(applied, wrongSet)).toBeGreaterThan(teeth * tolerance);
      const unweighted = exampleWeightedMean(updates.map((u) => ({ ...u, numExamples: 1 })));
      expect(maxAbsDiff(applied, unweighted)).toBeGreaterThan(teeth * tolerance);

      expect(rounds).toHaveLength(1);
      const round = rounds[0]!;
      expect(round).toMatchObject({
        number: 1,
        status: 'completed',
        secureAggregation: true,
        participants: survivors.length,
        failureCode: null,
      });
      expect(round.checkpoint).not.toBeNull();
      expect(Math.abs(round.trainLoss! - expectedLoss)).toBeLessThan(lossTolerance);
      const byClient = new Map(round.participations.map((p) => [p.clientId, p]));
      // A client lost after its masked input was summed still contributed to the mean.
      // Example counts travel masked: no participation records one (0 = unknown).
      expect(byClient.get(lost.id)).toMatchObject(
        inputSummed
          ? { status: 'completed', numExamples: 0, errorCode: null }
          : { status: 'dropped', numExamples: 0, errorCode: 'CLIENT_DROPPED' },
      );
      for (const c of clients.filter((x) => x !== lost)) {
        expect(byClient.get(c.id)).toMatchObject({
          status: 'completed',
          numExamples: 0,
          errorCode: null,
        });
      }
      expect(round.participations).toHaveLength(SIZES.length);
    },
  );
});
