import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeClient } from '../../client-node/node-client';
import { useWasmBackend } from '../helpers/backend';
import {
  assertCliBuilt,
  CliProcess,
  coordinatorArgs,
  expectExit,
  killAllCliProcesses,
} from '../helpers/cli-process';
import { closeAll, startClients } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRun } from '../helpers/persisted-rounds';
import { StableAddress } from '../helpers/stable-address';

/**
 * The coordinator process killed with SIGKILL in the middle of a secure round, then started
 * again on the same database: the completed round and its checkpoint are intact, the
 * interrupted round is recorded as aborted with its reason (not forgotten), training resumes
 * from the checkpoint, and the clients, real Node clients, reconnect by themselves.
 */

/** A cold start (tfjs, wasm, the test set) on two shared cores. */
const STARTUP_TIMEOUT_MS = 120_000;

let dir: string;
let address: StableAddress | undefined;
let clients: NodeClient[] = [];

beforeAll(() => assertCliBuilt());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-killed-'));
});
afterEach(async () => {
  closeAll(clients);
  clients = [];
  await killAllCliProcesses();
  await address?.close();
  address = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function startCoordinator(args: readonly string[]): Promise<CliProcess> {
  const coordinator = new CliProcess(args);
  const [, port] = await coordinator.waitForOutput(
    /listening on http:\/\/127\.0\.0\.1:(\d+)/,
    STARTUP_TIMEOUT_MS,
  );
  address!.pointAt(Number(port));
  return coordinator;
}

test('SIGKILL mid-round: completed rounds stay, the interrupted one is recorded aborted, training resumes', async () => {
  const { args, database } = coordinatorArgs(dir, {
    '--rounds': 3,
    '--min-clients': 3,
    '--batch-size': 32,
    '--test-limit': 200,
    '--experiment': 'killed',
  });
  const [backend, data] = await Promise.all([useWasmBackend(), smallMnist(600, 100)]);
  address = await StableAddress.open();
  const first = await startCoordinator(args);
  clients = await startClients(address.url, 3, data, 200, backend, () => ({ minParticipants: 3 }));

  await first.waitForOutput(/round 2: training on 3 clients/, STARTUP_TIMEOUT_MS);
  first.child.kill('SIGKILL');
  const killed = await first.exited;
  address.pointAt(null);
  expect(killed.signal).toBe('SIGKILL');
  expect(killed.stdout).not.toMatch(/round 2: (completed|failed)/);

  const before = await readPersistedRun(database, 'killed');
  expect(before.rounds.map((r) => [r.number, r.status])).toEqual([
    [1, 'completed'],
    [2, 'running'],
  ]);
  const firstCheckpoint = before.rounds[0]!.checkpoint!.modelHash;
  expect(before.checkpoint?.round).toBe(1);

  const second = await startCoordinator(args);
  const result = await second.result(240_000);
  expectExit(result, 0, 'the restarted coordinator');
  expect(result.stdout).toContain('resuming: rounds 1..1 are already completed in the database');
  expect(result.stdout + result.stderr).toContain(
    'round 2 was interrupted when the last coordinator ended: recorded as aborted',
  );

  const after = await readPersistedRun(database, 'killed');
  expect(after.rounds.map((r) => [r.number, r.attempt, r.status])).toEqual([
    [1, 1, 'completed'],
    [2, 1, 'aborted'],
    [2, 2, 'completed'],
    [3, 1, 'completed'],
  ]);
  expect(after.rounds[1]).toMatchObject({
    failureCode: 'ROUND_ABORTED',
    failureReason:
      'the coordinator ended during this round (killed or crashed) before recording it',
    secureAggregation: true,
    checkpoint: null,
  });
  expect(after.rounds[0]!.checkpoint!.modelHash).toBe(firstCheckpoint);
  expect(
    after.rounds.filter((r) => r.status === 'completed').every((r) => r.participants === 3),
  ).toBe(true);
  // The clients reconnected by themselves and saw the run to its end.
  const finished = await Promise.all(clients.map((c) => c.session.finished));
  expect(finished.map((f) => f.rounds)).toEqual([3, 3, 3]);
}, 420_000);
