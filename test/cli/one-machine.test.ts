import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunHistory } from '../../coordinator/history';
import {
  assertCliBuilt,
  CliProcess,
  expectExit,
  killAllCliProcesses,
} from '../helpers/cli-process';

/**
 * The README's commands on one machine, as a newcomer runs them: one coordinator and three
 * `cohort client` processes with no `--identity`, sharing one home directory. They used to
 * share ~/.cohort/identity.json and kick each other off the coordinator forever; now the
 * second and third take the next free identities, say so, and a secure round completes.
 * They are not told the task either: they learn it from the coordinator.
 */

const START_TIMEOUT_MS = 120_000;
const RUN_TIMEOUT_MS = 240_000;
const CLIENTS = 3;

let dir: string;

beforeAll(() => assertCliBuilt());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-one-machine-'));
});
afterEach(async () => {
  await killAllCliProcesses();
  rmSync(dir, { recursive: true, force: true });
});

test('three clients started with the same command and no --identity join as three clients', async () => {
  const env = { HOME: dir };
  const historyPath = join(dir, 'history.json');
  const coordinator = new CliProcess(
    [
      'coordinator',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--rounds',
      '1',
      '--max-examples',
      '100',
      '--test-limit',
      '200',
      '--backend',
      'wasm',
      '--json',
      historyPath,
    ],
    { cwd: dir, env },
  );
  const url = (
    await coordinator.waitForOutput(
      /coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/,
      START_TIMEOUT_MS,
    )
  )[1]!;
  const clients = Array.from(
    { length: CLIENTS },
    (_, i) =>
      new CliProcess(
        [
          'client',
          '--server',
          url,
          '--shard',
          `${i + 1}/${CLIENTS}`,
          '--limit',
          '100',
          '--backend',
          'wasm',
          '--min-participants',
          String(CLIENTS),
        ],
        { cwd: dir, env },
      ),
  );
  const [coordinatorResult, ...clientResults] = await Promise.all([
    coordinator.result(RUN_TIMEOUT_MS),
    ...clients.map((c) => c.result(RUN_TIMEOUT_MS)),
  ]);
  expectExit(coordinatorResult, 0, 'coordinator');
  clientResults.forEach((r, i) => expectExit(r, 0, `client ${i + 1}`));

  const ids = clientResults.map((r) => /registered as ([0-9a-f]{32})/.exec(r.stdout)?.[1]);
  expect(new Set(ids).size).toBe(CLIENTS);
  const used = clientResults.map(
    (r) => /(?:created|loaded) identity (\S+)/.exec(r.stdout)?.[1] ?? '',
  );
  const home = join(dir, '.cohort');
  expect(used.sort()).toEqual(
    ['identity.json', 'identity-2.json', 'identity-3.json'].map((f) => join(home, f)).sort(),
  );
  // No --task: each client asked the coordinator.
  for (const r of clientResults)
    expect(r.stdout).toContain('task: mnist (announced by the coordinator)');
  const notes = clientResults.filter((r) => /is in use by process \d+; using/.test(r.stdout));
  expect(notes).toHaveLength(CLIENTS - 1);
  // Locks are released on exit.
  for (const file of used) expect(existsSync(`${file}.lock`)).toBe(false);

  const history = JSON.parse(readFileSync(historyPath, 'utf8')) as RunHistory;
  expect(history.rounds.map((r) => [r.status, r.participants, r.secureAggregation])).toEqual([
    ['completed', CLIENTS, 'on'],
  ]);
  // No identity was kicked off for another: each registered exactly once.
  expect(coordinatorResult.stdout.match(/IDENTITY_IN_USE/g) ?? []).toHaveLength(0);
}, 400_000);
