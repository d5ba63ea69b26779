import { fromHex } from '../../shared/bytes';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { RunHistory } from '../../coordinator/history';
import { clientIdFromPublicKey } from '../../shared/identity';
import { evaluateModel } from '../../shared/training/local-train';
import { useWasmBackend } from '../helpers/backend';
import {
  assertCliBuilt,
  CliProcess,
  coordinatorArgs,
  expectExit,
  killAllCliProcesses,
} from '../helpers/cli-process';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRounds } from '../helpers/persisted-rounds';

const CLIENTS = 3;
const ROUNDS = 3;
const EXAMPLES = 300;
const TEST_LIMIT = 1000;
/** Generous: four processes on two shared cores, each loading MNIST and tfjs. */
const RUN_TIMEOUT_MS = 240_000;
/** A cold start (tfjs, wasm, the test set) while other processes load on the same two cores. */
const STARTUP_TIMEOUT_MS = 120_000;

let dir: string;

beforeAll(() => assertCliBuilt());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-cli-run-'));
});
afterEach(async () => {
  await killAllCliProcesses();
  rmSync(dir, { recursive: true, force: true });
});

/** The exported model, loaded the way a tfjs user would (from model.json + weights). */
async function loadExportedModel(directory: string): Promise<tf.LayersModel> {
  const modelJson = JSON.parse(readFileSync(join(directory, 'model.json'), 'utf8')) as {
    format: string;
    modelTopology: object;
    weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  };
  expect(modelJson.format).toBe('layers-model');
  const manifest = modelJson.weightsManifest;
  const buffers = manifest.flatMap((group) =>
    group.paths.map((path) => readFileSync(join(directory, path))),
  );
  const weightData = tf.io.concatenateArrayBuffers(
    buffers.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
  );
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: manifest.flatMap((group) => group.weights),
      weightData,
    }),
  );
}

describe('cohort coordinator + cohort client, as separate processes', () => {
  test(
    `${CLIENTS} clients x ${ROUNDS} rounds on MNIST shards: all exit 0, history, database, model and identities agree`,
    async () => {
      const historyPath = join(dir, 'history.json');
      const exportDir = join(dir, 'model');
      const coordinatorIdentity = join(dir, 'keys', 'coordinator.json');
      const joinTokenFile = join(dir, 'keys', 'join-token');
      // The tests load part of the test set in-process to re-evaluate the exported model.
      const [, testData] = await Promise.all([useWasmBackend(), smallMnist(1, TEST_LIMIT)]);

      const { args, database } = coordinatorArgs(dir, {
        '--rounds': ROUNDS,
        '--min-clients': CLIENTS,
        '--clients-per-round': CLIENTS,
        '--export': exportDir,
        '--json': historyPath,
        '--identity': coordinatorIdentity,
        // Enrollment: the coordinator creates the token file; the clients are given it.
        '--join-token-file': joinTokenFile,
        '--max-examples': EXAMPLES,
        '--test-limit': TEST_LIMIT,
        '--backend': 'wasm',
      });
      const coordinator = new CliProcess(args);
      const listening = await coordinator.waitForOutput(
        /coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/,
        STARTUP_TIMEOUT_MS,
      );
      const url = listening[1]!;
      expect(statSync(joinTokenFile).mode & 0o777).toBe(0o600);
      // The key it printed is the one in its identity file; the clients pin it.
      const coordinatorKey = (
        await coordinator.waitForOutput(/coordinator key: ([0-9a-f]{64})/, 1_000)
      )[1]!;
      expect(statSync(coordinatorIdentity).mode & 0o777).toBe(0o600);
      expect(
        (JSON.parse(readFileSync(coordinatorIdentity, 'utf8')) as { publicKey: string }).publicKey,
      ).toBe(coordinatorKey);

      const identities = Array.from({ length: CLIENTS }, (_, i) =>
        join(dir, 'keys', `id-${i + 1}.json`),
      );
      const clients = identities.map(
        (identity, i) =>
          new CliProcess([
            'client',
            '--server',
            url,
            '--task',
            'mnist',
            '--shard',
            `${i + 1}/${CLIENTS}`,
            '--limit',
            String(EXAMPLES),
            '--backend',
            'wasm',
            '--identity',
            identity,
            '--name',
            `cli-${i + 1}`,
            '--coordinator-key',
            coordinatorKey,
            '--join-token-file',
            joinTokenFile,
            // Three clients: below the default minimum cohort of 5 for secure rounds.
            '--min-participants',
            String(CLIENTS),
          ]),
      );

      const [coordinatorResult, ...clientResults] = await Promise.all([
        coordinator.result(RUN_TIMEOUT_MS),
        ...clients.map((c) => c.result(RUN_TIMEOUT_MS)),
      ]);
      expectExit(coordinatorResult, 0, 'coordinator');
      clientResults.forEach((r, i) => expectExit(r, 0, `client ${i + 1}`));
      for (const result of clientResults) {
        expect(result.stdout).toMatch(/registered as [0-9a-f]{32}/);
        expect(result.stdout).toMatch(/secure aggregation on/);
        expect(result.stdout).toContain(`coordinator key pinned: ${coordinatorKey}`);
        expect(result.stdout).toMatch(/coordinator finished/);
      }
      expect(coordinatorResult.stdout).toMatch(new RegExp(`${ROUNDS}/${ROUNDS} rounds completed`));
      expect(coordinatorResult.stdout).toContain(`created join token file ${joinTokenFile}`);
      const token = readFileSync(joinTokenFile, 'utf8').trim();
      for (const result of [coordinatorResult, ...clientResults]) {
        expect(result.stdout + result.stderr).not.toContain(token);
      }

      // The JSON history: every round completed by all three, accuracy rising.
      const history = JSON.parse(readFileSync(historyPath, 'utf8')) as RunHistory;
      expect(history.finishedAt).not.toBeNull();
      expect(
        history.rounds.map((r) => [r.round, r.status, r.participants, r.secureAggregation]),
      ).toEqual(Array.from({ length: ROUNDS }, (_, i) => [i + 1, 'completed', CLIENTS, 'on']));
      // The train loss came out of the masked sum: no client reported one in the clear.
      for (const round of history.rounds) expect(round.trainLoss).toBeGreaterThan(0);
      const accuracies = history.rounds.map((r) => r.testAccuracy);
      for (const accuracy of accuracies) {
        expect(accuracy).toBeGreaterThanOrEqual(0);
        expect(accuracy).toBeLessThanOrEqual(1);
      }
      expect(accuracies.at(-1)!).toBeGreaterThan(accuracies[0]!);
      expect(history.rounds.every((r) => r.evaluation === 'centralized')).toBe(true);

      // The database: the same rounds, each with three completed participations whose example
      // counts the coordinator never learned (secure mode: recorded as 0).
      const rounds = await readPersistedRounds(database, 'mnist');
      expect(rounds.map((r) => [r.number, r.status, r.participants])).toEqual(
        Array.from({ length: ROUNDS }, (_, i) => [i + 1, 'completed', CLIENTS]),
      );
      for (const [i, round] of rounds.entries()) {
        expect(round.testAccuracy).toBeCloseTo(accuracies[i]!, 6);
        expect(round.participations.map((p) => [p.status, p.numExamples])).toEqual(
          Array.from({ length: CLIENTS }, () => ['completed', 0]),
        );
      }

      // Identities: owner-only files whose keys are exactly the clients the database recorded.
      const idsFromFiles = identities.map((path) => {
        expect(statSync(path).mode & 0o777).toBe(0o600);
        // Next to it, the ledger of the secure rounds it revealed shares in: one per round.
        expect(statSync(`${path}.rounds`).mode & 0o777).toBe(0o600);
        expect(readFileSync(`${path}.rounds`, 'utf8').trim().split('\n')).toHaveLength(ROUNDS);
        const file = JSON.parse(readFileSync(path, 'utf8')) as { publicKey: string };
        return clientIdFromPublicKey(fromHex(file.publicKey));
      });
      expect(new Set(idsFromFiles).size).toBe(CLIENTS);
      expect(
        rounds
          .at(-1)!
          .participations.map((p) => p.clientId)
          .sort(),
      ).toEqual([...idsFromFiles].sort());
      expect(
        rounds
          .at(-1)!
          .participations.map((p) => p.displayName)
          .sort(),
      ).toEqual(['cli-1', 'cli-2', 'cli-3']);

      // The exported model is the final global model: it scores what the last round reported.
      const model = await loadExportedModel(exportDir);
      try {
        const evaluation = await evaluateModel(model, testData.test, 256);
        expect(evaluation.numExamples).toBe(TEST_LIMIT);
        expect(evaluation.accuracy).toBeCloseTo(accuracies.at(-1)!, 6);
      } finally {
        model.dispose();
      }
    },
    RUN_TIMEOUT_MS + 60_000,
  );

  test(
    'a client refuses a plain coordinator unless --allow-plain',
    async () => {
      const coordinator = new CliProcess([
        'coordinator',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--rounds',
        '1',
        '--min-clients',
        '1',
        '--secure-aggregation',
        'off',
        '--max-examples',
        '100',
        '--test-limit',
        '200',
        '--database',
        `file:${join(dir, 'plain.db')}`,
        '--identity',
        join(dir, 'keys', 'coordinator.json'),
        '--backend',
        'wasm',
      ]);
      const url = (
        await coordinator.waitForOutput(
          /coordinator listening on (http:\/\/127\.0\.0\.1:\d+)/,
          STARTUP_TIMEOUT_MS,
        )
      )[1]!;
      const client = (name: string, extra: string[]) =>
        new CliProcess([
          'client',
          '--server',
          url,
          '--shard',
          '1/10',
          '--limit',
          '100',
          '--backend',
          'wasm',
          '--identity',
          join(dir, 'keys', `${name}.json`),
          ...extra,
        ]);
      const strict = await client('strict', []).result(RUN_TIMEOUT_MS);
      expect(strict.code).toBe(1);
      expect(strict.stderr).toMatch(/^error: SECAGG_REQUIRED: .*--allow-plain/m);
      expect(strict.stdout).not.toMatch(/training \d+%/);

      const [lenient, coordinatorResult] = await Promise.all([
        client('lenient', ['--allow-plain']).result(RUN_TIMEOUT_MS),
        coordinator.result(RUN_TIMEOUT_MS),
      ]);
      expectExit(lenient, 0, 'client with --allow-plain');
      expectExit(coordinatorResult, 0, 'coordinator');
      expect(lenient.stdout).toMatch(/plain rounds allowed/);
      expect(lenient.stdout).toMatch(/secure aggregation off/);
      expect(coordinatorResult.stdout).toMatch(/1\/1 rounds completed/);
    },
    RUN_TIMEOUT_MS + 60_000,
  );
});
