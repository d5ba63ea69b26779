import { fitAnswerLimit } from '../../coordinator/answer-limits';
import { Coordinator } from '../../coordinator/coordinator';
import type { Logger } from '../../coordinator/logger';
import { bytesToFloats, floatsToBytes } from '../../shared/weights/codec';
import { readPersistedRun } from '../helpers/persisted-rounds';
import { connectScriptedClient } from '../helpers/scripted-client';
import {
  ScriptedFederation,
  maxAbsDifference,
  scriptedDelta,
} from '../helpers/scripted-federation';

/**
 * Per-event answer caps over real sockets: a client whose fit answer is otherwise valid but
 * padded far beyond what an honest update weighs (yet under socket.io's maxHttpBufferSize) is
 * refused MESSAGE_INVALID and disconnected, and the round aggregates exactly the others.
 */

const federation = new ScriptedFederation('answer-limits');

const TRAIN = [10, 20, 30];
const LOSS = [1, 2, 3];
/** Under the 16 MB maxHttpBufferSize set below: only the per-answer cap can catch it. */
const PADDING_BYTES = 5 * 1024 * 1024;

function modelOf(ins: Record<string, unknown>): { hash: string; weights: Float32Array } {
  const model = ins.model as { modelHash: string; weights: Uint8Array };
  return { hash: model.modelHash, weights: bytesToFloats(new Uint8Array(model.weights)) };
}

test('an oversized fit answer is refused and its client disconnected; the round sums the honest ones', async () => {
  const warnings: string[] = [];
  const log: Logger = { info: () => {}, warn: (line) => warnings.push(line), debug: () => {} };
  const database = federation.database('answer-limits.db');
  const coordinator = federation.track(
    await Coordinator.start(
      federation.config('answer-limits', {
        minClients: TRAIN.length + 1,
        maxMessageBytes: 16 * 1024 * 1024,
        database,
      }),
      { testSet: null, log },
    ),
  );

  /** What the clients saw and sent, filled in as the round runs. */
  const seen: { global?: Float32Array; rogueDelta?: Float32Array } = {};
  const deltas: Float32Array[] = [];
  for (let i = 0; i < TRAIN.length; i++) {
    const client = federation.trackClient(
      await connectScriptedClient(
        coordinator.url,
        {
          fit: (ins) => {
            const { hash, weights } = modelOf(ins);
            seen.global = weights;
            deltas[i] = scriptedDelta(i, 0, weights.length);
            return {
              status: 'ok',
              roundId: ins.roundId,
              modelHash: hash,
              numExamples: TRAIN[i],
              trainLoss: LOSS[i],
              update: floatsToBytes(deltas[i]!),
            };
          },
        },
        { trainExamples: TRAIN[i] },
      ),
    );
    await client.registered;
  }

  // A valid answer with a large delta of its own, plus a field no honest client sends.
  const rogue = federation.trackClient(
    await connectScriptedClient(
      coordinator.url,
      {
        fit: (ins) => {
          const { hash, weights } = modelOf(ins);
          seen.rogueDelta = scriptedDelta(7, 0, weights.length).map((v) => v * 100);
          return {
            status: 'ok',
            roundId: ins.roundId,
            modelHash: hash,
            numExamples: 100,
            trainLoss: 50,
            update: floatsToBytes(seen.rogueDelta),
            padding: new Uint8Array(PADDING_BYTES),
          };
        },
      },
      { trainExamples: 100 },
    ),
  );
  const rogueDisconnected = new Promise<string>((resolve) =>
    rogue.socket.once('disconnect', resolve),
  );
  const rogueId = ((await rogue.registered) as { clientId: string }).clientId;

  const history = await coordinator.done;
  const stillConnected = new Promise<string>((resolve) =>
    setTimeout(() => resolve('still connected'), 5_000).unref(),
  );
  expect(await Promise.race([rogueDisconnected, stillConnected])).toBe('io server disconnect');
  expect(history.rounds).toHaveLength(1);
  expect(history.rounds[0]).toMatchObject({
    status: 'completed',
    selected: TRAIN.length + 1,
    participants: TRAIN.length,
    rejected: 1,
    dropped: 0,
  });
  const start = seen.global!;
  const rogueDelta = seen.rogueDelta!;
  const cap = fitAnswerLimit(start.length, false);
  expect(cap).toBeLessThan(PADDING_BYTES);
  expect(warnings.filter((w) => w.includes(`fit answer is larger than ${cap} bytes`))).toHaveLength(
    1,
  );

  // The example-weighted means of the honest clients alone: train loss and applied delta.
  const total = TRAIN.reduce((a, b) => a + b, 0);
  const honestLoss = TRAIN.reduce((s, n, i) => s + n * LOSS[i]!, 0) / total; // 140 / 60
  expect(history.rounds[0]!.trainLoss).toBeCloseTo(honestLoss, 6);

  const run = await readPersistedRun(database, 'answer-limits');
  expect(run.rounds).toHaveLength(1);
  const rogueRecord = run.rounds[0]!.participations.find((p) => p.clientId === rogueId);
  expect(rogueRecord).toMatchObject({ status: 'rejected', errorCode: 'MESSAGE_INVALID' });
  expect(run.checkpoint?.round).toBe(1);
  const after = bytesToFloats(new Uint8Array(run.checkpoint!.weights));
  const applied = after.map((v, j) => v - start[j]!);
  const honest = applied.map(
    (_, j) => deltas.reduce((s, d, i) => s + d[j]! * TRAIN[i]!, 0) / total,
  );
  expect(maxAbsDifference(applied, honest)).toBeLessThan(1e-5);
  // Teeth: had the rogue counted, the mean would be far from what was applied.
  const withRogue = applied.map(
    (_, j) => (honest[j]! * total + rogueDelta[j]! * 100) / (total + 100),
  );
  expect(maxAbsDifference(applied, withRogue)).toBeGreaterThan(1e-2);
}, 60_000);
