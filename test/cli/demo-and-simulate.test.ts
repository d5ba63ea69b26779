import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { RunHistory } from '../../coordinator/history';
import { evaluateModel } from '../../shared/training/local-train';
import { useWasmBackend } from '../helpers/backend';
import { assertCliBuilt, expectExit, killAllCliProcesses, runCli } from '../helpers/cli-process';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRounds } from '../helpers/persisted-rounds';

/**
 * `cohort demo` and `cohort simulate` end to end, judged by what they leave behind: the
 * history JSON, the SQLite database and the exported model must tell one story (the same
 * rounds, the same accuracies, and a model that scores what the last round reported).
 */

const TEST_LIMIT = 500;
/** Generous: one process training three or four clients on two loaded cores. */
const RUN_TIMEOUT_MS = 240_000;

let dir: string;

beforeAll(() => assertCliBuilt());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-cli-demo-'));
});
afterEach(async () => {
  await killAllCliProcesses();
  rmSync(dir, { recursive: true, force: true });
});

/** The accuracy the CLI prints for a fraction, e.g. 0.9123 -> "91.23%". */
const percent = (accuracy: number) => `${(accuracy * 100).toFixed(2)}%`;

/** Scores an exported model (model.json + weights.bin) on the first `TEST_LIMIT` test examples. */
async function scoreExportedModel(directory: string): Promise<number> {
  const modelJson = JSON.parse(readFileSync(join(directory, 'model.json'), 'utf8')) as {
    format: string;
    modelTopology: object;
    weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  };
  expect(modelJson.format).toBe('layers-model');
  expect(modelJson.weightsManifest.flatMap((g) => g.paths)).toEqual(['weights.bin']);
  const weights = readFileSync(join(directory, 'weights.bin'));
  const [, data] = await Promise.all([useWasmBackend(), smallMnist(1, TEST_LIMIT)]);
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }),
  );
  try {
    const evaluation = await evaluateModel(model, data.test, 256);
    expect(evaluation.numExamples).toBe(TEST_LIMIT);
    return evaluation.accuracy;
  } finally {
    model.dispose();
  }
}

/** The history and the database agree round by round, accuracies within [0, 1]. */
async function expectDatabaseMatchesHistory(
  database: string,
  history: RunHistory,
): Promise<Awaited<ReturnType<typeof readPersistedRounds>>> {
  const rounds = await readPersistedRounds(database, history.experiment);
  expect(rounds.map((r) => [r.number, r.status, r.participants, r.dropped])).toEqual(
    history.rounds.map((r) => [r.round, r.status, r.participants, r.dropped]),
  );
  for (const [i, round] of rounds.entries()) {
    const entry = history.rounds[i]!;
    expect(round.secureAggregation).toBe(entry.secureAggregation === 'on');
    expect(round.testAccuracy).toBeCloseTo(entry.testAccuracy!, 6);
    expect(round.trainLoss).toBeCloseTo(entry.trainLoss!, 6);
    expect(entry.testAccuracy).toBeGreaterThanOrEqual(0);
    expect(entry.testAccuracy).toBeLessThanOrEqual(1);
  }
  return rounds;
}

describe('cohort demo', () => {
  test(
    'writes .cohort/demo.db, demo-history.json and demo-model/ in the working directory, all telling one story',
    async () => {
      const CLIENTS = 3;
      const ROUNDS = 3;
      const result = await runCli(
        [
          'demo',
          '--rounds',
          String(ROUNDS),
          '--limit',
          '300',
          '--test-limit',
          String(TEST_LIMIT),
          '--backend',
          'wasm',
        ],
        RUN_TIMEOUT_MS,
        dir,
      );
      expectExit(result, 0, 'cohort demo');

      // The documented defaults, relative to the working directory.
      const out = join(dir, '.cohort');
      const historyFile = join(out, 'demo-history.json');
      const modelDir = join(out, 'demo-model');
      for (const path of [join(out, 'demo.db'), historyFile, join(modelDir, 'model.json')]) {
        expect(statSync(path).size).toBeGreaterThan(0);
      }

      const history = JSON.parse(readFileSync(historyFile, 'utf8')) as RunHistory;
      expect(history.experiment).toMatch(/^demo-\d{8}-\d{6}$/);
      expect(history.task).toBe('mnist');
      expect(history.finishedAt).not.toBeNull();
      expect(history.historyFile).toBe(historyFile);
      expect(history.modelExportedTo).toBe(modelDir);
      expect(history.database).toBe('file:./.cohort/demo.db');
      // Three clients, every round secure and completed by all of them, evaluated centrally.
      expect(
        history.rounds.map((r) => [
          r.round,
          r.status,
          r.selected,
          r.participants,
          r.secureAggregation,
        ]),
      ).toEqual(
        Array.from({ length: ROUNDS }, (_, i) => [i + 1, 'completed', CLIENTS, CLIENTS, 'on']),
      );
      expect(history.rounds.every((r) => r.evaluation === 'centralized')).toBe(true);
      const accuracies = history.rounds.map((r) => r.testAccuracy!);
      // It learns: the last round scores above the first.
      expect(accuracies.at(-1)!).toBeGreaterThan(accuracies[0]!);

      const rounds = await expectDatabaseMatchesHistory(`file:${join(out, 'demo.db')}`, history);
      // Secure rounds: the coordinator never learned a client's example count.
      for (const round of rounds) {
        expect(round.participations.map((p) => [p.status, p.numExamples])).toEqual(
          Array.from({ length: CLIENTS }, () => ['completed', 0]),
        );
      }

      // What it printed is what it wrote.
      expect(result.stdout).toMatch(
        new RegExp(
          `experiment "${history.experiment}" \\(mnist\\): ${ROUNDS}/${ROUNDS} rounds completed`,
        ),
      );
      expect(result.stdout).toContain(`history: ${historyFile}`);
      expect(result.stdout).toContain(`model: ${modelDir}`);
      expect(result.stdout).toContain(
        `demo done: final test accuracy ${percent(accuracies.at(-1)!)}`,
      );

      // The exported model is the last round's global model.
      expect(await scoreExportedModel(modelDir)).toBeCloseTo(accuracies.at(-1)!, 6);
    },
    RUN_TIMEOUT_MS + 60_000,
  );
});

describe('cohort simulate', () => {
  test(
    'plain rounds with federated evaluation: --json, --export and --database agree, nothing written elsewhere',
    async () => {
      const CLIENTS = 4;
      const ROUNDS = 2;
      const LIMIT = 200;
      const database = `file:${join(dir, 'sim', 'simulation.db')}`;
      const historyFile = join(dir, 'sim', 'history.json');
      const modelDir = join(dir, 'sim', 'model');
      const result = await runCli(
        [
          'simulate',
          '--clients',
          String(CLIENTS),
          '--rounds',
          String(ROUNDS),
          '--seed',
          '1',
          '--limit',
          String(LIMIT),
          '--test-limit',
          String(TEST_LIMIT),
          '--secure-aggregation',
          'off',
          '--evaluation',
          'both',
          '--database',
          database,
          '--json',
          historyFile,
          '--export',
          modelDir,
          '--backend',
          'wasm',
        ],
        RUN_TIMEOUT_MS,
        dir,
      );
      expectExit(result, 0, 'cohort simulate');
      expect(result.stdout).toMatch(
        new RegExp(
          `simulating ${CLIENTS} clients \\(iid partition, dropout 0\\) for ${ROUNDS} rounds`,
        ),
      );
      // simulate has no default output directory.
      expect(existsSync(join(dir, '.cohort'))).toBe(false);

      const history = JSON.parse(readFileSync(historyFile, 'utf8')) as RunHistory;
      expect(history.experiment).toBe('mnist');
      expect(history.finishedAt).not.toBeNull();
      expect(history.modelExportedTo).toBe(modelDir);
      expect(
        history.rounds.map((r) => [r.round, r.status, r.selected, r.participants, r.dropped]),
      ).toEqual(
        Array.from({ length: ROUNDS }, (_, i) => [i + 1, 'completed', CLIENTS, CLIENTS, 0]),
      );
      for (const entry of history.rounds) {
        expect(entry.secureAggregation).toBe('off');
        expect(entry.evaluation).toBe('centralized');
        expect(entry.trainLoss).toBeGreaterThan(0);
        expect(entry.federatedAccuracy).toBeGreaterThanOrEqual(0);
        expect(entry.federatedAccuracy).toBeLessThanOrEqual(1);
      }

      const rounds = await expectDatabaseMatchesHistory(database, history);
      // Plain rounds: every client's example count is known, and capped by --limit.
      for (const round of rounds) {
        expect(
          round.participations.map((p) => [p.displayName, p.status, p.numExamples]).sort(),
        ).toEqual(Array.from({ length: CLIENTS }, (_, i) => [`sim-${i + 1}`, 'completed', LIMIT]));
      }
      expect(result.stdout).toContain(`database: ${database}`);
      expect(await scoreExportedModel(modelDir)).toBeCloseTo(
        history.rounds.at(-1)!.testAccuracy!,
        6,
      );
    },
    RUN_TIMEOUT_MS + 60_000,
  );
});
