import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeClient } from '../../client-node/node-client';
import { Coordinator } from '../../coordinator/coordinator';
import type { RoundHistoryEntry } from '../../coordinator/history';
import { useWasmBackend } from '../helpers/backend';
import { assertCliBuilt, CliProcess, killAllCliProcesses } from '../helpers/cli-process';
import { closeAll, startClients } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRounds } from '../helpers/persisted-rounds';

/**
 * A real client process killed with SIGKILL in each phase of a secure round: four in-process
 * clients and, each round, a fresh `cohort client` process that is killed as soon as it
 * prints the phase it was asked for (training, then each secure-aggregation phase). With five
 * clients (each accepting rounds of four) the threshold tolerates one loss anywhere, so every
 * round completes: without the
 * victim's update when it died before MaskedInput, with it when it died after its masked
 * input was summed (MaskedInput itself may go either way: the kill races the answer).
 */

const PHASES = [
  { phase: 'training', line: /training \d+%/, participants: [4] },
  { phase: 'advertiseKeys', line: /secure aggregation: advertiseKeys/, participants: [4] },
  { phase: 'shareKeys', line: /secure aggregation: shareKeys/, participants: [4] },
  { phase: 'maskedInput', line: /secure aggregation: maskedInput/, participants: [4, 5] },
  { phase: 'consistencyCheck', line: /secure aggregation: consistencyCheck/, participants: [5] },
  { phase: 'unmasking', line: /secure aggregation: unmasking/, participants: [5] },
] as const;

/** A cold start of a client process (tfjs, wasm, MNIST) on two shared cores. */
const STARTUP_TIMEOUT_MS = 120_000;

let dir: string;
let coordinator: Coordinator | undefined;
let clients: NodeClient[] = [];

beforeAll(() => assertCliBuilt());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-client-killed-'));
});
afterEach(async () => {
  closeAll(clients);
  clients = [];
  await killAllCliProcesses();
  await coordinator?.stop();
  coordinator = undefined;
  rmSync(dir, { recursive: true, force: true });
});

test('SIGKILL of a client process in each phase: every round completes as the threshold dictates', async () => {
  const database = `file:${join(dir, 'cohort.db')}`;
  coordinator = await Coordinator.start(
    {
      host: '127.0.0.1',
      port: 0,
      experiment: 'client-killed',
      rounds: PHASES.length,
      minClients: 5,
      overSelection: 0,
      batchSize: 32,
      evaluation: 'none',
      database,
    },
    { testSet: null },
  );
  const ended: RoundHistoryEntry[] = [];
  coordinator.on('round-end', (entry) => ended.push(entry));
  const [backend, data] = await Promise.all([useWasmBackend(), smallMnist(400, 20)]);
  // Every client accepts rounds of 4 (the default minimum is 5), so a loss before the view
  // is fixed still leaves a round the clients take part in.
  clients = await startClients(coordinator.url, 4, data, 100, backend, () => ({
    minParticipants: 4,
  }));

  for (const [index, { phase, line }] of PHASES.entries()) {
    const victim = new CliProcess([
      'client',
      '--server',
      coordinator.url,
      '--task',
      'mnist',
      '--shard',
      `${index + 1}/${PHASES.length}`,
      '--limit',
      '300',
      '--backend',
      'wasm',
      '--identity',
      join(dir, `victim-${phase}.json`),
      '--min-participants',
      '4',
    ]);
    await victim.waitForOutput(line, STARTUP_TIMEOUT_MS);
    victim.child.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');
    const deadline = Date.now() + 60_000;
    while (ended.length <= index && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(ended).toHaveLength(index + 1);
  }
  const history = await coordinator.done;

  for (const [index, { phase, participants }] of PHASES.entries()) {
    const round = history.rounds[index]!;
    expect([phase, round.status, round.selected, round.secureAggregation]).toEqual([
      phase,
      'completed',
      5,
      'on',
    ]);
    expect([phase, (participants as readonly number[]).includes(round.participants)]).toEqual([
      phase,
      true,
    ]);
    // Whoever is not in the mean dropped: nobody is miscounted as rejected.
    expect([phase, round.participants + round.dropped, round.rejected]).toEqual([phase, 5, 0]);
  }
  const rounds = await readPersistedRounds(database, 'client-killed');
  expect(rounds.map((r) => [r.number, r.status])).toEqual(
    PHASES.map((_, i) => [i + 1, 'completed']),
  );
  // The four survivors took part in every round.
  const finished = await Promise.all(clients.map((c) => c.session.finished));
  expect(finished.map((f) => f.rounds)).toEqual([6, 6, 6, 6]);
}, 900_000);
