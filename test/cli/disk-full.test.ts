import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesToFloats, hashWeights } from '../../shared/weights/codec';
import type { WeightManifest } from '../../shared/weights/codec';
import {
  assertCliBuilt,
  CliProcess,
  coordinatorArgs,
  killAllCliProcesses,
} from '../helpers/cli-process';
import { readPersistedRun } from '../helpers/persisted-rounds';
import { connectScriptedClient, plainUpdateAnswer } from '../helpers/scripted-client';
import type { ScriptedClient } from '../helpers/scripted-client';
import { scriptedDelta } from '../helpers/scripted-federation';

/**
 * The disk fills up under a running coordinator (a real process whose files may not grow
 * past a limit: its writes fail as on a full disk). The round being saved fails loudly, the
 * process exits non-zero naming the round and what is saved, every completed round and the
 * last checkpoint are intact, and once there is room again a restart on the same database
 * resumes from exactly that checkpoint and finishes the run.
 */

const STARTUP_TIMEOUT_MS = 120_000;
const ROUNDS = 40;
/** The database starts near 200 KiB and each round adds ~90 KiB (its checkpoint): it fills up mid-run. */
const FILE_SIZE_LIMIT_KB = 1200;

let dir: string;
let clients: ScriptedClient[] = [];

beforeAll(() => assertCliBuilt());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-disk-full-'));
});
afterEach(async () => {
  for (const client of clients) client.close();
  clients = [];
  await killAllCliProcesses();
  rmSync(dir, { recursive: true, force: true });
});

interface SentModel {
  round: number;
  hash: string;
  manifest: WeightManifest;
  weights: Float32Array;
}

async function startCoordinator(args: readonly string[], fileSizeLimitKb?: number) {
  const coordinator = new CliProcess(
    args,
    fileSizeLimitKb !== undefined ? { fileSizeLimitKb } : {},
  );
  const [, url] = await coordinator.waitForOutput(
    /listening on (http:\/\/127\.0\.0\.1:\d+)/,
    STARTUP_TIMEOUT_MS,
  );
  return { coordinator, url: url! };
}

/** Three scripted clients answering each round with known deltas; client 0 records the models. */
async function joinClients(url: string, sent: SentModel[]): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const client = await connectScriptedClient(url, {
      fit: (ins) => {
        const model = ins.model as {
          modelHash: string;
          manifest: WeightManifest;
          weights: Uint8Array;
        };
        const round = ins.round as number;
        const weights = bytesToFloats(new Uint8Array(model.weights));
        if (i === 0) sent.push({ round, hash: model.modelHash, manifest: model.manifest, weights });
        return plainUpdateAnswer(
          ins as never,
          100,
          1,
          scriptedDelta(i, round, weights.length).map((v) => v * 0.01),
        );
      },
    });
    clients.push(client);
    await client.registered;
  }
}

test('a full disk fails the round being saved loudly; completed rounds survive and a restart resumes from them', async () => {
  const { args, database } = coordinatorArgs(dir, {
    '--rounds': ROUNDS,
    '--min-clients': 3,
    '--over-selection': 0,
    '--secure-aggregation': 'off',
    '--evaluation': 'none',
    '--experiment': 'disk-full',
    // A failed database is given this long to answer the clean-up writes.
    '--database-busy-timeout': 2,
  });
  const full = await startCoordinator(args, FILE_SIZE_LIMIT_KB);
  const sent: SentModel[] = [];
  await joinClients(full.url, sent);
  const result = await full.coordinator.result(STARTUP_TIMEOUT_MS);
  const output = result.stdout + result.stderr;
  expect(result.code).toBe(1);
  const match = /DATABASE_ERROR: round (\d+) could not be saved.*rounds 1-(\d+) are saved/.exec(
    output,
  );
  expect(match).not.toBeNull();
  const [failedRound, lastSaved] = [Number(match![1]), Number(match![2])];
  // It filled up mid-run, not at start-up nor never.
  expect(lastSaved).toBeGreaterThanOrEqual(1);
  expect(failedRound).toBe(lastSaved + 1);
  expect(failedRound).toBeLessThan(ROUNDS);
  for (const client of clients) client.close();
  clients = [];

  // Every completed round is there, and the checkpoint is the model round lastSaved produced
  // (the one the clients were sent for the failed round).
  const saved = await readPersistedRun(database, 'disk-full');
  expect(saved.lastCompletedRound).toBe(lastSaved);
  const completed = saved.rounds.filter((r) => r.status === 'completed').map((r) => r.number);
  expect(completed).toEqual(Array.from({ length: lastSaved }, (_, k) => k + 1));
  const failedModel = sent.find((s) => s.round === failedRound)!;
  expect(saved.checkpoint!.modelHash).toBe(failedModel.hash);
  expect(await hashWeights(failedModel.manifest, bytesToFloats(saved.checkpoint!.weights))).toBe(
    failedModel.hash,
  );

  // Room again: the restart resumes from that checkpoint and runs the remaining rounds.
  const restarted = await startCoordinator(args);
  const resumedSent: SentModel[] = [];
  await joinClients(restarted.url, resumedSent);
  const finished = await restarted.coordinator.result(STARTUP_TIMEOUT_MS);
  expect(finished.code).toBe(0);
  expect(resumedSent[0]!.round).toBe(failedRound);
  expect(resumedSent[0]!.hash).toBe(failedModel.hash);
  const after = await readPersistedRun(database, 'disk-full');
  expect(after.lastCompletedRound).toBe(ROUNDS);
  const attempts = after.rounds.filter((r) => r.number === failedRound).map((r) => r.status);
  expect(attempts).toEqual(['aborted', 'completed']);
}, 300_000);
