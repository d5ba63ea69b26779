import { Coordinator } from '../../coordinator/coordinator';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import { isCohortError } from '../../shared/errors';
import { clientIdFromPublicKey } from '../../shared/identity';
import { bytesToFloats } from '../../shared/weights/codec';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRun } from '../helpers/persisted-rounds';
import { NO_ANSWER, connectScriptedClient, plainUpdateAnswer } from '../helpers/scripted-client';
import type { ScriptedClient } from '../helpers/scripted-client';
import { ScriptedFederation, scriptedDelta } from '../helpers/scripted-federation';
import { waitUntil } from '../helpers/wait-until';

/**
 * What a round records about itself, judged by its numbers over real sockets with scripted
 * clients: the seed and round id it hands out, the example-weighted train loss, the bytes it
 * received, the progress it forwards, the metrics it persists; and how it ends when nobody
 * completes, when the applied model would overflow, when the coordinator stops mid-round, and
 * when a secure round loses clients before or inside its secure phases.
 */

const federation = new ScriptedFederation('round-record');

type Handlers = Parameters<typeof connectScriptedClient>[1];

const config = (experiment: string, extra: Partial<CoordinatorConfigInput>) =>
  federation.config(experiment, extra);

async function start(
  options: CoordinatorConfigInput,
  testSet: Awaited<ReturnType<typeof smallMnist>>['test'] | null = null,
): Promise<Coordinator> {
  return federation.track(await Coordinator.start(options, { testSet }));
}

/** Connects one scripted client per handler set and waits until each is registered. */
async function join(
  coordinator: Coordinator,
  handlers: readonly Handlers[],
  trainExamples: readonly number[] = handlers.map(() => 100),
): Promise<ScriptedClient[]> {
  const clients: ScriptedClient[] = [];
  for (let i = 0; i < handlers.length; i++) {
    const client = await connectScriptedClient(coordinator.url, handlers[i]!, {
      trainExamples: trainExamples[i],
    });
    federation.trackClient(client);
    await client.registered;
    clients.push(client);
  }
  return clients;
}

interface FitRequest {
  roundId: string;
  round: number;
  model: { modelHash: string; weights: Uint8Array };
  config: { seed: number };
}

const asFit = (ins: Record<string, unknown>) => ins as unknown as FitRequest;

const modelLength = (ins: FitRequest) => new Uint8Array(ins.model.weights).byteLength / 4;

test("a plain round's record: fit seed, round id, weighted train loss, bytes received, progress, persisted metrics", async () => {
  const TRAIN = [10, 30, 60];
  const LOSS = [0.5, 2, 4];
  // The largest seed: round r trains with (seed + r) mod 2^32.
  const options = config('record', { rounds: 2, seed: 2 ** 32 - 1 });
  const coordinator = await start(options);
  const progress: Array<{ round: number; clientId: string; fraction: number }> = [];
  coordinator.on('client-progress', (p) => progress.push(p));

  const asked: FitRequest[][] = [[], [], []];
  let modelBytes = 0;
  const clients: ScriptedClient[] = [];
  const handlers = TRAIN.map((n, i): Handlers => ({
    fit: (raw) => {
      const ins = asFit(raw);
      asked[i]!.push(ins);
      modelBytes = 4 * modelLength(ins);
      clients[i]!.socket.emit('progress', { roundId: ins.roundId, fraction: 0.5 });
      return plainUpdateAnswer(ins, n, LOSS[i]!, scriptedDelta(i, ins.round, modelLength(ins)));
    },
  }));
  clients.push(...(await join(coordinator, handlers, TRAIN)));
  const history = await coordinator.done;
  expect(history.rounds.map((r) => r.status)).toEqual(['completed', 'completed']);

  for (const requests of asked) {
    expect(requests.map((r) => r.config.seed)).toEqual([0, 1]);
    expect(requests.map((r) => r.round)).toEqual([1, 2]);
  }
  // Each round has one id, shared by its cohort: the experiment id's first 12 characters
  // (a UUID's), the round number, 8 random hex digits.
  for (const round of [1, 2]) {
    const ids = new Set(asked.map((requests) => requests[round - 1]!.roundId));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(new RegExp(`^[0-9a-f]{8}-[0-9a-f]{3}-r${round}-[0-9a-f]{8}$`));
  }
  expect(asked[0]![0]!.roundId).not.toBe(asked[0]![1]!.roundId);

  // Progress reached the coordinator's observers with the round and the client's id.
  const ids = clients.map((c) => clientIdFromPublicKey(c.identity.publicKey)).sort();
  await waitUntil(() => progress.length === 6);
  for (const round of [1, 2]) {
    const reported = progress.filter((p) => p.round === round);
    expect(reported.map((p) => p.fraction)).toEqual([0.5, 0.5, 0.5]);
    expect(reported.map((p) => p.clientId).sort()).toEqual(ids);
  }

  // Train loss: weighted by the examples each client trained on, not a plain average.
  const total = TRAIN.reduce((a, b) => a + b, 0);
  const weighted = LOSS.reduce((s, l, i) => s + l * TRAIN[i]!, 0) / total; // 3.05
  const unweighted = LOSS.reduce((a, b) => a + b, 0) / LOSS.length;
  expect(Math.abs(weighted - unweighted)).toBeGreaterThan(0.5);
  // Bytes: what the cohort sent this round, essentially its three updates, counted once.
  for (const entry of history.rounds) {
    expect(entry.trainLoss).toBeCloseTo(weighted, 6);
    expect(entry.bytesReceived).toBeGreaterThanOrEqual(3 * modelBytes);
    expect(entry.bytesReceived).toBeLessThan(3 * modelBytes * 1.02 + 3 * 1024);
  }

  const { rounds } = await readPersistedRun(options.database!, 'record');
  expect(rounds.map((r) => r.number)).toEqual([1, 2]);
  for (const r of rounds) {
    expect(r.trainLoss).toBeCloseTo(weighted, 6);
    expect(Object.keys(r.metrics).sort()).toEqual(['rejected', 'selected', 'train_loss']);
    expect(r.metrics).toMatchObject({ selected: 3, rejected: 0 });
    expect(r.metrics.train_loss).toBeCloseTo(weighted, 6);
  }
}, 60_000);

test('a plain round no client completes fails with ROUND_ABORTED, is not evaluated, and leaves the model as it was', async () => {
  const data = await smallMnist(0, 40);
  const options = config('nobody', { rounds: 2, evaluation: 'centralized' });
  const coordinator = await start(options, data.test);
  const hashes: string[] = [];
  const handlers = [0, 1, 2].map((i): Handlers => ({
    fit: (raw) => {
      const ins = asFit(raw);
      hashes.push(ins.model.modelHash);
      if (ins.round === 1) {
        return { status: 'error', roundId: ins.roundId, code: 'TRAINING_FAILED', message: 'no' };
      }
      return plainUpdateAnswer(ins, 50, 1, scriptedDelta(i, 2, modelLength(ins)));
    },
  }));
  await join(coordinator, handlers);
  const history = await coordinator.done;

  expect(history.rounds[0]).toMatchObject({
    round: 1,
    status: 'failed',
    participants: 0,
    rejected: 3,
    dropped: 0,
    selected: 3,
    trainLoss: null,
    testLoss: null,
    testAccuracy: null,
    evaluation: 'none',
    failureReason: 'ROUND_ABORTED: no client completed training',
  });
  // The second round starts from the untouched model and is evaluated centrally.
  expect(new Set(hashes).size).toBe(1);
  expect(hashes).toHaveLength(6);
  expect(history.rounds[1]).toMatchObject({
    round: 2,
    status: 'completed',
    evaluation: 'centralized',
  });
  expect(history.rounds[1]!.testAccuracy).toEqual(expect.any(Number));

  const { rounds } = await readPersistedRun(options.database!, 'nobody');
  expect(rounds[0]).toMatchObject({
    number: 1,
    status: 'failed',
    failureCode: 'ROUND_ABORTED',
    checkpoint: null,
  });
  expect(rounds[0]!.metrics).toEqual({ selected: 3, rejected: 3 });
  expect(rounds[0]!.participations.map((p) => [p.status, p.errorCode])).toEqual([
    ['rejected', 'TRAINING_FAILED'],
    ['rejected', 'TRAINING_FAILED'],
    ['rejected', 'TRAINING_FAILED'],
  ]);
}, 60_000);

test('finite updates that overflow float32 once applied fail the round with UPDATE_NON_FINITE; the run goes on from the old model', async () => {
  const options = config('overflow', {
    rounds: 2,
    strategy: 'fedavgm',
    serverLearningRate: 10,
  });
  const coordinator = await start(options);
  const hashes: string[][] = [[], []];
  const handlers = [0, 1, 2].map((i): Handlers => ({
    fit: (raw) => {
      const ins = asFit(raw);
      hashes[ins.round - 1]!.push(ins.model.modelHash);
      const delta = scriptedDelta(i, ins.round, modelLength(ins));
      // Finite (float32 max is 3.4e38), but ten times it is not.
      if (ins.round === 1) delta[7] = 1e38;
      return plainUpdateAnswer(ins, 20, 1, delta);
    },
  }));
  await join(coordinator, handlers);
  const history = await coordinator.done;

  expect(history.rounds[0]).toMatchObject({
    status: 'failed',
    participants: 0,
    trainLoss: null,
    failureReason:
      'UPDATE_NON_FINITE: the aggregated model has Infinity at index 7; the round is not applied',
  });
  expect(history.rounds[1]).toMatchObject({ status: 'completed', participants: 3 });
  expect(new Set([...hashes[0]!, ...hashes[1]!]).size).toBe(1);

  const { rounds, checkpoint } = await readPersistedRun(options.database!, 'overflow');
  expect(rounds[0]).toMatchObject({ status: 'failed', failureCode: 'UPDATE_NON_FINITE' });
  expect(rounds[0]!.checkpoint).toBeNull();
  expect(checkpoint?.round).toBe(2);
  expect(bytesToFloats(new Uint8Array(checkpoint!.weights)).every(Number.isFinite)).toBe(true);
}, 60_000);

test('a coordinator stopped mid-round records that round as aborted, nothing of its fit (a restart runs it again)', async () => {
  const options = config('stopped', { rounds: 1 });
  const coordinator = await start(options);
  let asked = 0;
  // Clients that never answer: the round is still in its fit phase when the coordinator stops.
  await join(
    coordinator,
    [0, 1, 2].map((): Handlers => ({
      fit: () => {
        asked++;
        return NO_ANSWER;
      },
    })),
  );
  await waitUntil(() => asked === 3);
  const ended = coordinator.done.then(
    () => null,
    (error: unknown) => error,
  );
  await coordinator.stop();
  const error = await ended;
  expect(isCohortError(error) ? error.message : error).toBe(
    'INTERNAL: coordinator stopped during round 1',
  );
  const { rounds, lastCompletedRound } = await readPersistedRun(options.database!, 'stopped');
  expect(rounds).toHaveLength(1);
  expect(rounds[0]).toMatchObject({
    number: 1,
    status: 'aborted',
    failureCode: 'ROUND_ABORTED',
    failureReason: 'the coordinator stopped during this round',
    participations: [],
  });
  expect(lastCompletedRound).toBe(0);
}, 60_000);

/** A secure fit answer: no update, weight or loss in the clear. */
const secureOk = (raw: Record<string, unknown>) => {
  const ins = asFit(raw);
  return { status: 'ok', roundId: ins.roundId, modelHash: ins.model.modelHash };
};

test('a secure round with fewer than three trained clients ends with SECAGG_BELOW_THRESHOLD before any secure phase', async () => {
  const options = config('secure-few', { secureAggregation: true });
  const coordinator = await start(options);
  let secaggRequests = 0;
  const secagg = () => {
    secaggRequests++;
    return NO_ANSWER;
  };
  await join(coordinator, [
    { fit: secureOk, secagg },
    { fit: secureOk, secagg },
    {
      fit: (raw) => ({
        status: 'error',
        roundId: asFit(raw).roundId,
        code: 'TRAINING_FAILED',
        message: 'out of memory',
      }),
      secagg,
    },
  ]);
  const history = await coordinator.done;
  expect(history.rounds[0]).toMatchObject({
    status: 'failed',
    participants: 0,
    rejected: 1,
    secureAggregation: 'on',
    failureReason:
      'SECAGG_BELOW_THRESHOLD: 2 clients finished training; secure aggregation needs at least 3',
  });
  expect(secaggRequests).toBe(0);
}, 60_000);

test('in the secure phases a client that refuses is recorded rejected with its code, a silent one dropped', async () => {
  const options = config('secure-lost', { secureAggregation: true, phaseTimeoutMs: 1_000 });
  const coordinator = await start(options);
  const phases: string[] = [];
  const silent = (req: Record<string, unknown>) => {
    phases.push(String(req.phase));
    return NO_ANSWER;
  };
  const clients = await join(coordinator, [
    {
      fit: secureOk,
      secagg: (req) => {
        phases.push(String(req.phase));
        return { status: 'error', code: 'SECAGG_INCONSISTENT', message: 'refused' };
      },
    },
    { fit: secureOk, secagg: silent },
    { fit: secureOk, secagg: silent },
  ]);
  const history = await coordinator.done;
  expect(phases).toEqual(['advertiseKeys', 'advertiseKeys', 'advertiseKeys']);
  expect(history.rounds[0]).toMatchObject({
    status: 'failed',
    participants: 0,
    rejected: 1,
    dropped: 2,
  });
  expect(history.rounds[0]!.failureReason).toMatch(/^SECAGG_BELOW_THRESHOLD: /);

  const { rounds } = await readPersistedRun(options.database!, 'secure-lost');
  const byClient = new Map(rounds[0]!.participations.map((p) => [p.clientId, p]));
  const [refusing, ...quiet] = clients.map((c) =>
    byClient.get(clientIdFromPublicKey(c.identity.publicKey)),
  );
  expect(refusing).toMatchObject({ status: 'rejected', errorCode: 'SECAGG_INCONSISTENT' });
  for (const p of quiet)
    expect(p).toMatchObject({ status: 'dropped', errorCode: 'ROUND_DEADLINE' });
}, 60_000);
