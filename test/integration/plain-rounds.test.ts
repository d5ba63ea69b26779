import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeClient } from '../../client-node/node-client';
import { Coordinator } from '../../coordinator/coordinator';
import type { RunHistory } from '../../coordinator/history';
import { simulate } from '../../coordinator/cli/simulation';
import type { Dataset } from '../../shared/data/dataset';
import { useWasmBackend } from '../helpers/backend';
import { closeAll, startClients } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRounds } from '../helpers/persisted-rounds';
import { StableAddress } from '../helpers/stable-address';

let backend: string;
let data: { train: Dataset; test: Dataset };
let dir: string;
let clients: NodeClient[] = [];
let coordinators: Coordinator[] = [];
let addresses: StableAddress[] = [];

beforeAll(async () => {
  backend = await useWasmBackend();
  data = await smallMnist(900, 500);
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-it-'));
});
afterEach(async () => {
  closeAll(clients);
  clients = [];
  for (const c of coordinators) await c.stop();
  coordinators = [];
  for (const a of addresses) await a.close();
  addresses = [];
  rmSync(dir, { recursive: true, force: true });
});

const plain = { secureAggregation: false, batchSize: 16, learningRate: 0.1 } as const;

describe('plain federated rounds on real sockets', () => {
  test('3 clients x 3 rounds: accuracy rises, history and database agree', async () => {
    const database = `file:${join(dir, 'run.db')}`;
    const jsonPath = join(dir, 'history.json');
    const history = await simulate({
      clients: 3,
      rounds: 3,
      task: 'mnist',
      data,
      backend,
      database,
      seed: 7,
      coordinator: { ...plain, experiment: 'three-by-three', jsonPath },
    });
    const accuracies = history.rounds.map((r) => r.testAccuracy!);
    expect(history.rounds.map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
    for (const round of history.rounds) {
      expect(round.participants).toBe(3);
      expect(round.dropped).toBe(0);
      expect(round.bytesReceived).toBeGreaterThan(0);
      expect(round.secureAggregation).toBe('off');
    }
    expect(accuracies[2]!).toBeGreaterThan(accuracies[0]!);
    expect(accuracies[2]!).toBeGreaterThan(0.5);

    const written = JSON.parse(readFileSync(jsonPath, 'utf8')) as RunHistory;
    expect(written.rounds.map((r) => r.testAccuracy)).toEqual(accuracies);

    const rounds = await readPersistedRounds(database, 'three-by-three');
    expect(rounds.map((r) => [r.number, r.status, r.participants])).toEqual([
      [1, 'completed', 3],
      [2, 'completed', 3],
      [3, 'completed', 3],
    ]);
    expect(rounds[2]!.testAccuracy).toBeCloseTo(accuracies[2]!, 6);
    expect(
      rounds[2]!.participations.every((p) => p.status === 'completed' && p.numExamples === 300),
    ).toBe(true);
  });

  test('a client that disconnects mid-round does not stall the round', async () => {
    const coordinator = await Coordinator.start(
      {
        ...plain,
        host: '127.0.0.1',
        port: 0,
        rounds: 2,
        minClients: 3,
        overSelection: 0,
        // A stalled round would wait ten minutes: far beyond the test's own timeout.
        roundTimeoutMs: 600_000,
        database: `file:${join(dir, 'drop.db')}`,
      },
      { testSet: data.test },
    );
    coordinators.push(coordinator);
    clients = await startClients(coordinator.url, 3, data, 300, backend, (i) => ({
      allowPlain: true,
      ...(i === 0 ? { faults: { dropMidRound: (round) => round === 1, rejoinAfterMs: 200 } } : {}),
    }));
    const history = await coordinator.done;
    expect(history.rounds[0]).toMatchObject({
      round: 1,
      status: 'completed',
      participants: 2,
      dropped: 1,
    });
    // The vanished client rejoined on its own and took part in the next round.
    expect(history.rounds[1]).toMatchObject({
      round: 2,
      status: 'completed',
      participants: 3,
      dropped: 0,
    });
  });

  test('a coordinator stopped and restarted on the same database resumes; clients reconnect by themselves', async () => {
    const database = `file:${join(dir, 'resume.db')}`;
    const options = {
      ...plain,
      host: '127.0.0.1',
      rounds: 3,
      minClients: 2,
      overSelection: 0,
      experiment: 'resumable',
      database,
    };
    // The clients know one address for the whole test; behind it, the first coordinator, then
    // the second on a fresh port (re-binding the first one's port could race another process).
    const address = await StableAddress.open();
    addresses.push(address);
    const first = await Coordinator.start({ ...options, port: 0 }, { testSet: data.test });
    coordinators.push(first);
    address.pointAt(first.port);
    clients = await startClients(address.url, 2, data, 300, backend, () => ({ allowPlain: true }));
    await new Promise<void>((resolve) => first.once('round-end', () => resolve()));
    address.pointAt(null);
    await first.stop();
    await expect(first.done).rejects.toThrow();

    const second = await Coordinator.start({ ...options, port: 0 }, { testSet: data.test });
    coordinators.push(second);
    address.pointAt(second.port);
    const history = await second.done;
    expect(history.resumedFromRound).toBeGreaterThanOrEqual(1);
    expect(history.rounds[0]!.round).toBe(history.resumedFromRound + 1);
    expect(history.rounds.at(-1)!.round).toBe(3);
    expect(history.rounds.every((r) => r.status === 'completed' && r.participants === 2)).toBe(
      true,
    );
    const done = await Promise.all(clients.map((c) => c.session.finished));
    expect(done.every((d) => d.rounds === 3)).toBe(true);

    const rounds = await readPersistedRounds(database, 'resumable');
    expect(rounds.filter((r) => r.status === 'completed').map((r) => r.number)).toEqual([1, 2, 3]);
  });
});
