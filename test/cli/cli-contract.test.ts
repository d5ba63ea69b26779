import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunHistory } from '../../coordinator/history';
import type { RoundSummary } from '../../coordinator/persistence/store-types';
import { loadOrCreateIdentity, publicKeyHex } from '../../client-node/identity-store';
import { fromHex } from '../../shared/bytes';
import { clientIdFromPublicKey } from '../../shared/identity';
import {
  assertCliBuilt,
  CliProcess,
  expectExit,
  killAllCliProcesses,
} from '../helpers/cli-process';
import { readPersistedRounds, readPersistedRun } from '../helpers/persisted-rounds';
import { connectRawSocket } from '../helpers/raw-socket';
import { connectPeer, plainFitAnswer } from './socket-peer';
import type { PeerFitIns, SocketPeer } from './socket-peer';

/**
 * The coordinator's documented behaviour, one contract per test, each over a real `cohort
 * coordinator` process and real sockets: over-selection, the round deadline, --keep-alive,
 * the per-round --json history and --trusted-keys. Clients are `cohort client` processes where
 * they must train, and scripted socket peers where a test needs one to stay silent or to
 * answer only when the test says so (the coordinator cannot tell them apart).
 */

/** Generous: a cold start of several node processes on two loaded cores takes tens of seconds. */
const START_TIMEOUT_MS = 120_000;
const RUN_TIMEOUT_MS = 240_000;
const TEST_TIMEOUT_MS = START_TIMEOUT_MS + RUN_TIMEOUT_MS;
/** Training examples per client per round (plain answers claim exactly this many). */
const EXAMPLES = 100;

let dir: string;
const peers: SocketPeer[] = [];

beforeAll(() => assertCliBuilt());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-cli-contract-'));
});
afterEach(async () => {
  for (const peer of peers.splice(0)) peer.close();
  await killAllCliProcesses();
  rmSync(dir, { recursive: true, force: true });
});

const database = () => `file:${join(dir, 'cohort.db')}`;
const historyPath = () => join(dir, 'history.json');
const readHistory = () => JSON.parse(readFileSync(historyPath(), 'utf8')) as RunHistory;

/** `cohort coordinator` on a free loopback port, its files in the test's folder. */
function startCoordinator(extra: string[]): CliProcess {
  return new CliProcess(
    [
      'coordinator',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--backend',
      'wasm',
      '--task',
      'mnist',
      '--database',
      database(),
      '--identity',
      join(dir, 'keys', 'coordinator.json'),
      '--json',
      historyPath(),
      '--max-examples',
      String(EXAMPLES),
      '--test-limit',
      '200',
      ...extra,
    ],
    { cwd: dir },
  );
}

/** Waits for the coordinator to listen; its URL and the key clients pin. */
async function listening(coordinator: CliProcess): Promise<{ url: string; key: string }> {
  const url = (
    await coordinator.waitForOutput(
      /coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/,
      START_TIMEOUT_MS,
    )
  )[1]!;
  const key = (await coordinator.waitForOutput(/coordinator key: ([0-9a-f]{64})/, 1_000))[1]!;
  return { url, key };
}

/** `cohort client` on shard `shard` of MNIST, training on EXAMPLES examples. */
function startClient(url: string, name: string, shard: string, extra: string[]): CliProcess {
  return new CliProcess(
    [
      'client',
      '--server',
      url,
      '--task',
      'mnist',
      '--shard',
      shard,
      '--limit',
      String(EXAMPLES),
      '--backend',
      'wasm',
      '--identity',
      join(dir, 'keys', `${name}.json`),
      '--name',
      name,
      ...extra,
    ],
    { cwd: dir },
  );
}

async function peer(url: string, options: Parameters<typeof connectPeer>[1] = {}) {
  const connected = await connectPeer(url, options);
  peers.push(connected);
  return connected;
}

/** Per round: [round, status, selected, participants, dropped, rejected]. */
const roundCounts = (history: RunHistory) =>
  history.rounds.map((r) => [r.round, r.status, r.selected, r.participants, r.dropped, r.rejected]);

/** One round's participations as [clientId, status, numExamples, errorCode], by client id. */
const participationsOf = (round: RoundSummary) =>
  round.participations.map((p) => [p.clientId, p.status, p.numExamples, p.errorCode]);

/** What the database holds to resume from: the last completed round and its checkpoint. */
async function persistedCheckpoint(experiment = 'mnist') {
  const { lastCompletedRound, checkpoint } = await readPersistedRun(database(), experiment);
  return { lastCompletedRound, checkpoint };
}

/** GET over plain HTTP: the status and the body. */
function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('--over-selection', () => {
  test(
    'target 3, over-selection 0.25: 4 selected, the round closes on the 3rd update and the straggler is cancelled',
    async () => {
      // Secure mode (the default): the straggler never trains, so it is out before the
      // masked phases and the round aggregates the three that answered.
      const coordinator = startCoordinator([
        '--rounds',
        '2',
        '--min-clients',
        '3',
        '--clients-per-round',
        '3',
        '--over-selection',
        '0.25',
      ]);
      const { url, key } = await listening(coordinator);
      // Connected now, registered only once round 1 has its cohort: it can be selected from
      // round 2 on, when 4 clients are connected for a target of 3.
      const straggler = await peer(url);
      const clients = [1, 2, 3].map((i) =>
        startClient(url, `cli-${i}`, `${i}/3`, [
          '--coordinator-key',
          key,
          '--min-participants',
          '3',
        ]),
      );
      await coordinator.waitForOutput(
        /round 1: training on 3 clients \(target 3\)/,
        RUN_TIMEOUT_MS,
      );
      expect(await straggler.register()).toMatchObject({ status: 'ok', clientId: straggler.id });
      // Everyone connected is selected: the target plus a quarter, rounded up.
      const round2 = await coordinator.waitForOutput(
        /round 2: training on (\d+) clients \(target (\d+)\)/,
        RUN_TIMEOUT_MS,
      );
      expect([round2[1], round2[2]]).toEqual(['4', '3']);

      const [coordinatorResult, ...clientResults] = await Promise.all([
        coordinator.result(RUN_TIMEOUT_MS),
        ...clients.map((c) => c.result(RUN_TIMEOUT_MS)),
      ]);
      expectExit(coordinatorResult, 0, 'coordinator');
      clientResults.forEach((r, i) => expectExit(r, 0, `client ${i + 1}`));

      // Selected in round 2 (its only request), told to stop once the target was reached.
      expect(straggler.fits.map((f) => [f.round, f.secure])).toEqual([[2, true]]);
      expect(straggler.cancels).toEqual([
        { roundId: straggler.fits[0]!.roundId, reason: 'round closed without your update' },
      ]);

      const history = readHistory();
      expect(roundCounts(history)).toEqual([
        [1, 'completed', 3, 3, 0, 0],
        [2, 'completed', 4, 3, 1, 0],
      ]);
      expect(history.rounds.every((r) => r.secureAggregation === 'on')).toBe(true);
      expect(history.rounds[1]!.trainLoss).toBeGreaterThan(0);
      // Closed by the third update, not by the deadline (--round-timeout's default, 600 s).
      expect(history.rounds[1]!.durationMs).toBeLessThan(600_000);

      const rounds = await readPersistedRounds(database(), 'mnist');
      expect(rounds.map((r) => [r.number, r.status, r.participants, r.dropped])).toEqual([
        [1, 'completed', 3, 0],
        [2, 'completed', 3, 1],
      ]);
      const second = rounds[1]!;
      expect(second.participations).toHaveLength(4);
      const trained = second.participations.filter((p) => p.clientId !== straggler.id);
      expect(trained.map((p) => [p.displayName, p.status, p.errorCode]).sort()).toEqual([
        ['cli-1', 'completed', null],
        ['cli-2', 'completed', null],
        ['cli-3', 'completed', null],
      ]);
      expect(second.participations.find((p) => p.clientId === straggler.id)).toMatchObject({
        status: 'dropped',
        numExamples: 0,
        errorCode: 'ROUND_DEADLINE',
      });
    },
    TEST_TIMEOUT_MS,
  );
});

describe('--round-timeout', () => {
  test(
    'a connected client that never answers fit is dropped with ROUND_DEADLINE; the round completes with the others',
    async () => {
      const coordinator = startCoordinator([
        '--rounds',
        '1',
        '--min-clients',
        '2',
        '--secure-aggregation',
        'off',
        // Ample for 100 examples; the silent client holds the round this long.
        '--round-timeout',
        '30',
      ]);
      const { url, key } = await listening(coordinator);
      // Registered first: the round starts once the trainer joins, with both selected.
      const silent = await peer(url);
      await silent.register();
      const client = startClient(url, 'cli-1', '1/3', ['--allow-plain', '--coordinator-key', key]);

      const [coordinatorResult, clientResult] = await Promise.all([
        coordinator.result(RUN_TIMEOUT_MS),
        client.result(RUN_TIMEOUT_MS),
      ]);
      expectExit(coordinatorResult, 0, 'coordinator');
      expectExit(clientResult, 0, 'client');
      expect(coordinatorResult.stdout).toMatch(/round 1: training on 2 clients \(target 2\)/);
      expect(coordinatorResult.stdout).toMatch(/1\/1 rounds completed/);
      expect(clientResult.stdout).toMatch(/round 1 completed: 1 clients/);
      expect(silent.fits).toHaveLength(1);
      expect(silent.cancels.map((c) => c.roundId)).toEqual([silent.fits[0]!.roundId]);

      const history = readHistory();
      expect(roundCounts(history)).toEqual([[1, 'completed', 2, 1, 1, 0]]);
      expect(history.rounds[0]!.failureReason).toBeNull();
      expect(history.rounds[0]!.trainLoss).toBeGreaterThan(0);
      expect(history.rounds[0]!.testAccuracy).toBeGreaterThanOrEqual(0);
      expect(history.rounds[0]!.testAccuracy).toBeLessThanOrEqual(1);

      const [round] = await readPersistedRounds(database(), 'mnist');
      expect([round!.status, round!.participants, round!.dropped]).toEqual(['completed', 1, 1]);
      const trainer = round!.participations.find((p) => p.clientId !== silent.id);
      expect(participationsOf(round!)).toEqual(
        [
          [silent.id, 'dropped', 0, 'ROUND_DEADLINE'],
          [trainer!.clientId, 'completed', EXAMPLES, null],
        ].sort(),
      );
      expect(trainer!.displayName).toBe('cli-1');
      expect((await persistedCheckpoint()).lastCompletedRound).toBe(1);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    'a secure round whose whole cohort stays silent fails with ROUND_ABORTED, nothing applied, and the coordinator still exits 0',
    async () => {
      const coordinator = startCoordinator([
        '--rounds',
        '1',
        '--min-clients',
        '3',
        '--round-timeout',
        '5',
      ]);
      const { url } = await listening(coordinator);
      const silent = await Promise.all([1, 2, 3].map(() => peer(url)));
      await Promise.all(silent.map((p) => p.register()));

      // Nothing trains: the round ends 5 s after it starts, or the deadline is not applied.
      const result = await coordinator.result(START_TIMEOUT_MS);
      expectExit(result, 0, 'coordinator');
      expect(result.stdout).toMatch(/0\/1 rounds completed/);
      for (const p of silent) {
        expect(p.fits.map((f) => [f.round, f.secure])).toEqual([[1, true]]);
        expect(p.cancels.map((c) => c.roundId)).toEqual([p.fits[0]!.roundId]);
      }

      const history = readHistory();
      expect(roundCounts(history)).toEqual([[1, 'failed', 3, 0, 3, 0]]);
      expect(history.rounds[0]).toMatchObject({
        failureReason: 'ROUND_ABORTED: no client completed training',
        trainLoss: null,
        testAccuracy: null,
      });

      const [round] = await readPersistedRounds(database(), 'mnist');
      expect([round!.status, round!.failureCode, round!.participants, round!.dropped]).toEqual([
        'failed',
        'ROUND_ABORTED',
        0,
        3,
      ]);
      expect(participationsOf(round!)).toEqual(
        silent.map((p) => [p.id, 'dropped', 0, 'ROUND_DEADLINE']).sort(),
      );
      expect(await persistedCheckpoint()).toEqual({ lastCompletedRound: 0, checkpoint: null });
    },
    TEST_TIMEOUT_MS,
  );
});

describe('--keep-alive', () => {
  test.each(['SIGTERM', 'SIGINT'] as const)(
    'after the last round the coordinator keeps serving, then exits 0 on %s',
    async (signal) => {
      const coordinator = startCoordinator([
        '--rounds',
        '1',
        '--min-clients',
        '1',
        '--secure-aggregation',
        'off',
        '--keep-alive',
      ]);
      const { url, key } = await listening(coordinator);
      const client = await peer(url, { fit: (ins) => plainFitAnswer(ins, EXAMPLES) });
      await client.register();
      await coordinator.waitForOutput(
        /run complete; --keep-alive: still serving, Ctrl-C to stop/,
        RUN_TIMEOUT_MS,
      );
      expect(coordinator.stdout).toMatch(/1\/1 rounds completed/);

      // Still serving: engine.io answers a handshake over HTTP, and a new socket.io client
      // is greeted with a challenge signed for by the same coordinator.
      const handshake = await httpGet(`${url}/socket.io/?EIO=4&transport=polling`);
      expect(handshake.status).toBe(200);
      expect(handshake.body).toMatch(/^0\{"sid":/);
      const late = await connectRawSocket(url);
      late.close();
      expect(late.challenge.coordinatorId).toBe(clientIdFromPublicKey(fromHex(key)));
      expect(coordinator.hasExited).toBe(false);

      coordinator.child.kill(signal);
      const result = await coordinator.result(60_000);
      expectExit(result, 0, `coordinator after ${signal}`);
      expect(result.stdout).toMatch(/stopping coordinator/);
      expect(result.stderr).not.toMatch(/error/i);

      // The run it kept serving after is complete on disk.
      const history = readHistory();
      expect(history.finishedAt).not.toBeNull();
      expect(roundCounts(history)).toEqual([[1, 'completed', 1, 1, 0, 0]]);
      expect(
        (await readPersistedRounds(database(), 'mnist')).map((r) => [r.number, r.status]),
      ).toEqual([[1, 'completed']]);
    },
    TEST_TIMEOUT_MS,
  );
});

describe('--json', () => {
  test(
    'the history file is rewritten after every round: 1 round, then 2, then 3 and finished',
    async () => {
      const ROUNDS = 3;
      const coordinator = startCoordinator([
        '--rounds',
        String(ROUNDS),
        '--min-clients',
        '2',
        '--secure-aggregation',
        'off',
      ]);
      const { url } = await listening(coordinator);

      // Every distinct, complete snapshot of the file while the run goes (a read that catches
      // a write half-way does not parse and is read again on the next tick).
      const snapshots: RunHistory[] = [];
      let lastText = '';
      const poll = setInterval(() => {
        let text: string;
        try {
          text = readFileSync(historyPath(), 'utf8');
        } catch {
          return; // not written yet
        }
        if (text === lastText) return;
        try {
          snapshots.push(JSON.parse(text) as RunHistory);
          lastText = text;
        } catch {
          // a write in progress
        }
      }, 20);
      /**
       * Round n's update is sent only once the file showed n - 1 rounds: the file cannot
       * skip ahead, so each snapshot is seen. A snapshot that never comes is recorded.
       */
      const missed: number[] = [];
      const afterSnapshot = async (rounds: number): Promise<void> => {
        for (let waited = 0; waited < 30_000; waited += 20) {
          if (snapshots.some((s) => s.rounds.length === rounds)) return;
          await new Promise((r) => setTimeout(r, 20));
        }
        missed.push(rounds);
      };
      const fit = async (ins: PeerFitIns) => {
        if (ins.round > 1) await afterSnapshot(ins.round - 1);
        return plainFitAnswer(ins, EXAMPLES);
      };
      try {
        const clients = await Promise.all([peer(url, { fit }), peer(url, { fit })]);
        await Promise.all(clients.map((c) => c.register()));
        expectExit(await coordinator.result(RUN_TIMEOUT_MS), 0, 'coordinator');
      } finally {
        clearInterval(poll);
      }

      expect(missed).toEqual([]);
      const final = readHistory();
      expect(final.finishedAt).not.toBeNull();
      expect(final.historyFile).toBe(historyPath());
      expect(roundCounts(final)).toEqual(
        Array.from({ length: ROUNDS }, (_, i) => [i + 1, 'completed', 2, 2, 0, 0]),
      );
      // Seen in order, each a valid history of the rounds so far, unfinished until the end.
      const counts = snapshots.map((s) => s.rounds.length);
      expect(counts).toEqual([...counts].sort((a, b) => a - b));
      for (let n = 1; n < ROUNDS; n++) {
        const snapshot = snapshots.find((s) => s.rounds.length === n);
        expect(snapshot).toBeDefined();
        expect(snapshot!.finishedAt).toBeNull();
        expect(snapshot!.experiment).toBe('mnist');
        expect(snapshot!.startedAt).toBe(final.startedAt);
        expect(snapshot!.rounds).toEqual(final.rounds.slice(0, n));
      }
      const rounds = await readPersistedRounds(database(), 'mnist');
      expect(rounds.map((r) => r.testAccuracy)).toEqual(final.rounds.map((r) => r.testAccuracy));
    },
    TEST_TIMEOUT_MS,
  );
});

describe('--trusted-keys', () => {
  /** Identities made before the run, as an operator would to collect the cohort's keys. */
  async function identities(names: string[]) {
    return Promise.all(
      names.map(async (name) => {
        const path = join(dir, 'keys', `${name}.json`);
        const { identity } = await loadOrCreateIdentity(path);
        return { name, key: publicKeyHex(identity), id: clientIdFromPublicKey(identity.publicKey) };
      }),
    );
  }

  function writeTrustedKeys(keys: string[]): string {
    const path = join(dir, 'trusted-keys.txt');
    writeFileSync(path, `# the cohort, one key a line\n${keys.join('\n')}\n`);
    return path;
  }

  test(
    'clients pinned to a file listing the whole cohort complete a secure round',
    async () => {
      const members = await identities(['cli-1', 'cli-2', 'cli-3']);
      const trusted = writeTrustedKeys(members.map((m) => m.key));
      const coordinator = startCoordinator(['--rounds', '1', '--min-clients', '3']);
      const { url, key } = await listening(coordinator);
      const clients = members.map((m, i) =>
        startClient(url, m.name, `${i + 1}/3`, [
          '--coordinator-key',
          key,
          '--min-participants',
          '3',
          '--trusted-keys',
          trusted,
        ]),
      );
      const [coordinatorResult, ...clientResults] = await Promise.all([
        coordinator.result(RUN_TIMEOUT_MS),
        ...clients.map((c) => c.result(RUN_TIMEOUT_MS)),
      ]);
      expectExit(coordinatorResult, 0, 'coordinator');
      clientResults.forEach((r, i) => {
        expectExit(r, 0, `client ${i + 1}`);
        expect(r.stdout).toContain(
          `loaded identity ${join(dir, 'keys', `cli-${i + 1}.json`)} (public key ${members[i]!.key})`,
        );
        expect(r.stdout).toMatch(/secure rounds limited to 3 trusted keys/);
        expect(r.stdout).toMatch(/round 1 completed: 3 clients/);
      });
      expect(roundCounts(readHistory())).toEqual([[1, 'completed', 3, 3, 0, 0]]);
      const [round] = await readPersistedRounds(database(), 'mnist');
      expect(participationsOf(round!)).toEqual(
        members.map((m) => [m.id, 'completed', 0, null]).sort(),
      );
      expect((await persistedCheckpoint()).lastCompletedRound).toBe(1);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    'a cohort member missing from the file is refused by the pinned clients (SECAGG_SIGNATURE) and nothing is aggregated',
    async () => {
      const members = await identities(['cli-1', 'cli-2', 'cli-3']);
      const outsider = members[2]!;
      // cli-1 and cli-2 trust each other only; cli-3 pins nothing and is in the round anyway.
      const trusted = writeTrustedKeys([members[0]!.key, members[1]!.key]);
      const coordinator = startCoordinator(['--rounds', '1', '--min-clients', '3']);
      const { url, key } = await listening(coordinator);
      const clients = members.map((m, i) =>
        startClient(url, m.name, `${i + 1}/3`, [
          '--coordinator-key',
          key,
          '--min-participants',
          '3',
          ...(m === outsider ? [] : ['--trusted-keys', trusted]),
        ]),
      );
      const [coordinatorResult, ...clientResults] = await Promise.all([
        coordinator.result(RUN_TIMEOUT_MS),
        ...clients.map((c) => c.result(RUN_TIMEOUT_MS)),
      ]);
      // The run itself ends normally: the round failed, and the coordinator said so.
      expectExit(coordinatorResult, 0, 'coordinator');
      expect(coordinatorResult.stdout).toMatch(/0\/1 rounds completed/);
      clientResults.forEach((r, i) => expectExit(r, 0, `client ${i + 1}`));
      for (const pinned of clientResults.slice(0, 2)) {
        expect(pinned.stdout).toMatch(/secure rounds limited to 2 trusted keys/);
        expect(pinned.stdout).toContain(
          `request refused: SECAGG_SIGNATURE: ${outsider.id} is not a known identity`,
        );
        expect(pinned.stdout).toMatch(/round 1 failed: 0 clients/);
      }

      const history = readHistory();
      expect(history.rounds).toHaveLength(1);
      expect(history.rounds[0]).toMatchObject({
        status: 'failed',
        participants: 0,
        rejected: 2,
        trainLoss: null,
        testAccuracy: null,
      });
      expect(history.rounds[0]!.failureReason).toMatch(/^SECAGG_BELOW_THRESHOLD: /);

      const [round] = await readPersistedRounds(database(), 'mnist');
      expect([round!.status, round!.failureCode, round!.participants]).toEqual([
        'failed',
        'SECAGG_BELOW_THRESHOLD',
        0,
      ]);
      const byId = new Map(round!.participations.map((p) => [p.clientId, p]));
      for (const pinned of members.slice(0, 2)) {
        expect(byId.get(pinned.id)).toMatchObject({
          status: 'rejected',
          errorCode: 'SECAGG_SIGNATURE',
        });
      }
      expect(await persistedCheckpoint()).toEqual({ lastCompletedRound: 0, checkpoint: null });
    },
    TEST_TIMEOUT_MS,
  );
});
