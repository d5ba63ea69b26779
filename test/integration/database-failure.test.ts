import Database from 'better-sqlite3';
import { Coordinator } from '../../coordinator/coordinator';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import { isCohortError } from '../../shared/errors';
import { bytesToFloats } from '../../shared/weights/codec';
import { readPersistedRun } from '../helpers/persisted-rounds';
import { connectScriptedClient, plainUpdateAnswer } from '../helpers/scripted-client';
import {
  maxAbsDifference,
  ScriptedFederation,
  scriptedDelta,
} from '../helpers/scripted-federation';

/**
 * A round that cannot be saved fails loudly and loses nothing: another process holds the
 * SQLite database locked past --database-busy-timeout while round 3 is being recorded. The
 * run stops with DATABASE_ERROR naming the round and what is saved, clients hear that the
 * round failed, rounds 1-2 and their checkpoint are intact, and a restart on the same
 * database records round 3 as interrupted and resumes from exactly round 2's weights.
 */

const federation = new ScriptedFederation('database-failure');
const CLIENTS = 3;
const EXPERIMENT = 'locked';

interface SeenRound {
  round: number;
  weights: Float32Array;
}

/** Three scripted clients that answer fit with known deltas and record what they were sent. */
async function joinClients(url: string, seen: SeenRound[], summaries: unknown[]) {
  for (let i = 0; i < CLIENTS; i++) {
    const client = federation.trackClient(
      await connectScriptedClient(url, {
        fit: (ins) => {
          const model = ins.model as { weights: Uint8Array };
          const round = ins.round as number;
          const weights = bytesToFloats(new Uint8Array(model.weights));
          if (i === 0) seen.push({ round, weights });
          return plainUpdateAnswer(ins as never, 100, 1, scriptedDelta(i, round, weights.length));
        },
      }),
    );
    client.socket.on('round-summary', (summary: unknown) => summaries.push(summary));
    await client.registered;
  }
}

/** The plain FedAvg mean of the three scripted deltas of `round`. */
function meanDelta(round: number, length: number): Float32Array {
  const mean = new Float32Array(length);
  for (let i = 0; i < CLIENTS; i++) {
    const delta = scriptedDelta(i, round, length);
    for (let j = 0; j < length; j++) mean[j]! += delta[j]! / CLIENTS;
  }
  return mean;
}

test('a database locked past the busy timeout fails that round loudly; completed rounds survive and a restart resumes from them', async () => {
  const database = federation.database('locked.db');
  const config: CoordinatorConfigInput = federation.config(EXPERIMENT, {
    rounds: 4,
    database,
    databaseBusyTimeoutMs: 400,
  });
  const first = federation.track(await Coordinator.start(config, { testSet: null }));
  let lock: Database.Database | undefined;
  first.on('round-start', ({ round }) => {
    if (round !== 3) return;
    // Another process takes the write lock once round 3 has begun and keeps it.
    lock = new Database(database.slice('file:'.length));
    lock.exec('BEGIN EXCLUSIVE');
  });
  const seen: SeenRound[] = [];
  const summaries: unknown[] = [];
  await joinClients(first.url, seen, summaries);

  const error = await first.done.then(
    () => null,
    (e: unknown) => e,
  );
  lock!.exec('ROLLBACK');
  lock!.close();
  expect(isCohortError(error) && error.code).toBe('DATABASE_ERROR');
  expect((error as Error).message).toMatch(/round 3 could not be saved/);
  expect((error as Error).message).toMatch(/rounds 1-2 are saved/);
  expect(first.status).toBe('failed');
  // The clients were told round 3 failed, and why; it was never announced as done.
  const told = summaries as Array<{ round: number; status: string; reason: string | null }>;
  const toldRound3 = told.filter((s) => s.round === 3);
  // Each of the three clients heard it once, as failed.
  expect(toldRound3.map((s) => s.status)).toEqual(['failed', 'failed', 'failed']);
  expect(toldRound3[0]!.reason).toMatch(/^DATABASE_ERROR: round 3 could not be saved/);
  await first.stop();

  const saved = await readPersistedRun(database, EXPERIMENT);
  expect(saved.lastCompletedRound).toBe(2);
  expect(saved.rounds.map((r) => [r.number, r.status])).toEqual([
    [1, 'completed'],
    [2, 'completed'],
    [3, 'aborted'],
  ]);
  // The round says why it is missing: not saved, the database locked.
  expect(saved.rounds[2]!.failureReason).toMatch(/^not saved: .*locked by another process/);
  const w0 = seen.find((s) => s.round === 1)!.weights;
  const sentInRound3 = seen.find((s) => s.round === 3)!.weights;
  // The checkpoint is round 2's model: w0 plus the two rounds' mean deltas.
  const checkpoint = bytesToFloats(saved.checkpoint!.weights);
  const [mean1, mean2] = [meanDelta(1, w0.length), meanDelta(2, w0.length)];
  const expected = w0.map((w, j) => w + mean1[j]! + mean2[j]!);
  expect(maxAbsDifference(checkpoint, expected)).toBeLessThan(1e-5);
  expect(maxAbsDifference(checkpoint, sentInRound3)).toBe(0);

  // Restart on the same database: round 3 is recorded as interrupted, training resumes from
  // round 2's weights, and the run finishes.
  const second = federation.track(await Coordinator.start(config, { testSet: null }));
  const resumedSeen: SeenRound[] = [];
  await joinClients(second.url, resumedSeen, []);
  const history = await second.done;
  expect(history.resumedFromRound).toBe(2);
  expect(history.rounds.map((r) => [r.round, r.status])).toEqual([
    [3, 'completed'],
    [4, 'completed'],
  ]);
  expect(maxAbsDifference(resumedSeen.find((s) => s.round === 3)!.weights, checkpoint)).toBe(0);
  const after = await readPersistedRun(database, EXPERIMENT);
  const round3 = after.rounds.filter((r) => r.number === 3);
  expect(round3.map((r) => r.status)).toEqual(['aborted', 'completed']);
  expect(after.lastCompletedRound).toBe(4);
});
