import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeClient } from '../../client-node/node-client';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import { Coordinator } from '../../coordinator/coordinator';
import type { Logger } from '../../coordinator/logger';
import { simulate } from '../../coordinator/cli/simulation';
import type { Dataset } from '../../shared/data/dataset';
import { useWasmBackend } from '../helpers/backend';
import { closeAll, startClients } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRounds } from '../helpers/persisted-rounds';

/**
 * Whole secure rounds over real sockets, from the coordinator's side of the metadata line:
 * the train loss comes out of the masked sum (no client reports one), no per-client example
 * count is recorded, and per-client metrics are collected only when the experiment asks for
 * them and only from clients that share them.
 */

const PER_CLIENT = 150;

let backend: string;
let data: { train: Dataset; test: Dataset };
let dir: string;
let clients: NodeClient[] = [];
let coordinators: Coordinator[] = [];

beforeAll(async () => {
  backend = await useWasmBackend();
  data = await smallMnist(3 * PER_CLIENT, 300);
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-secure-'));
});
afterEach(async () => {
  closeAll(clients);
  clients = [];
  for (const c of coordinators) await c.stop();
  coordinators = [];
  rmSync(dir, { recursive: true, force: true });
});

function recordingLogger(lines: string[]): Logger {
  return {
    info: (l) => lines.push(`info: ${l}`),
    warn: (l) => lines.push(`warn: ${l}`),
    debug: () => undefined,
  };
}

async function startCoordinator(
  database: string,
  overrides: Partial<CoordinatorConfigInput>,
  log: string[],
): Promise<Coordinator> {
  const coordinator = await Coordinator.start(
    {
      host: '127.0.0.1',
      port: 0,
      rounds: 1,
      minClients: 3,
      overSelection: 0,
      batchSize: 16,
      seed: 5,
      database,
      ...overrides,
    },
    { log: recordingLogger(log) },
  );
  coordinators.push(coordinator);
  return coordinator;
}

describe('secure rounds', () => {
  test('3 simulated clients x 2 rounds: the train loss comes from the masked sum; no example count is recorded', async () => {
    const database = `file:${join(dir, 'sim.db')}`;
    const history = await simulate({
      clients: 3,
      rounds: 2,
      task: 'mnist',
      data,
      backend,
      database,
      seed: 2,
      coordinator: { batchSize: 16, experiment: 'secure-sim' },
    });
    expect(history.rounds.map((r) => [r.status, r.participants, r.secureAggregation])).toEqual([
      ['completed', 3, 'on'],
      ['completed', 3, 'on'],
    ]);
    for (const round of history.rounds) {
      expect(round.trainLoss).not.toBeNull();
      // A cross-entropy over 10 classes after a little training: positive, well below ln(10)+1.
      expect(round.trainLoss!).toBeGreaterThan(0);
      expect(round.trainLoss!).toBeLessThan(4);
      expect(round.evaluation).toBe('centralized');
    }
    expect(history.rounds[1]!.testAccuracy!).toBeGreaterThan(0.3);
    const rounds = await readPersistedRounds(database, 'secure-sim');
    for (const round of rounds) {
      expect(round.trainLoss).toBeCloseTo(history.rounds[round.number - 1]!.trainLoss!, 6);
      expect(round.participations.map((p) => [p.status, p.numExamples])).toEqual([
        ['completed', 0],
        ['completed', 0],
        ['completed', 0],
      ]);
    }
  }, 180_000);

  test('clients keep their default minimum of 5 participants: a 3-client secure round is refused', async () => {
    const log: string[] = [];
    const database = `file:${join(dir, 'small.db')}`;
    const coordinator = await startCoordinator(database, { evaluation: 'none' }, log);
    clients = await startClients(coordinator.url, 3, data, PER_CLIENT, backend);
    const history = await coordinator.done;
    expect(history.rounds[0]).toMatchObject({ status: 'failed', participants: 0 });
    const rounds = await readPersistedRounds(database, 'mnist');
    expect(rounds[0]!.checkpoint).toBeNull();
  }, 180_000);

  test('--evaluation auto with no coordinator test set: no per-client metrics are collected, and the operator is told', async () => {
    const log: string[] = [];
    const coordinator = await startCoordinator(
      `file:${join(dir, 'auto.db')}`,
      { evaluation: 'auto' },
      log,
    );
    expect(log.some((l) => /^warn: .*per-client metrics are not collected/.test(l))).toBe(true);
    clients = await startClients(coordinator.url, 3, data, PER_CLIENT, backend, () => ({
      minParticipants: 3,
      shareMetrics: true,
    }));
    const history = await coordinator.done;
    expect(history.rounds[0]).toMatchObject({
      status: 'completed',
      participants: 3,
      evaluation: 'none',
      testAccuracy: null,
      federatedAccuracy: null,
    });
  }, 180_000);

  test('--evaluation federated: clients that keep their metrics are skipped, not failed', async () => {
    const log: string[] = [];
    const coordinator = await startCoordinator(
      `file:${join(dir, 'federated.db')}`,
      { evaluation: 'federated' },
      log,
    );
    const identityPaths = [0, 1, 2].map((i) => join(dir, `identity-${i}.json`));
    clients = await startClients(coordinator.url, 3, data, PER_CLIENT, backend, (i) => ({
      minParticipants: 3,
      shareMetrics: i > 0,
      identityPath: identityPaths[i]!,
    }));
    const history = await coordinator.done;
    // Each client remembered, durably and next to its identity, the round it revealed in.
    for (const path of identityPaths) {
      const lines = readFileSync(`${path}.rounds`, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]!.startsWith(`${coordinator.coordinatorId}/mnist/`)).toBe(true);
    }
    const round = history.rounds[0]!;
    expect(round).toMatchObject({ status: 'completed', participants: 3, evaluation: 'federated' });
    expect(round.federatedAccuracy).not.toBeNull();
    expect(round.testAccuracy).toBe(round.federatedAccuracy);
    expect(log).toContain('info: round 1: 1 of 3 clients keep their metrics private');
    expect(log.filter((l) => l.startsWith('warn:') && /evaluation/.test(l))).toEqual([]);
  }, 180_000);

  test('--evaluation federated, nobody shares: the round completes unevaluated', async () => {
    const log: string[] = [];
    const coordinator = await startCoordinator(
      `file:${join(dir, 'private.db')}`,
      { evaluation: 'federated' },
      log,
    );
    clients = await startClients(coordinator.url, 3, data, PER_CLIENT, backend, () => ({
      minParticipants: 3,
    }));
    const history = await coordinator.done;
    expect(history.rounds[0]).toMatchObject({
      status: 'completed',
      participants: 3,
      testAccuracy: null,
      federatedAccuracy: null,
    });
    expect(log).toContain('info: round 1: 3 of 3 clients keep their metrics private');
  }, 180_000);
});
