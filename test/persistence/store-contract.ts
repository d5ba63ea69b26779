import { readdirSync, readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { isCohortError } from '../../shared/errors';
import type { ErrorCode } from '../../shared/errors';
import type { CohortStore, RoundRecordInput } from '../../coordinator/persistence/store';

/** A fresh, empty database for one test, and white-box access to it. */
export interface StoreFixture {
  /** Opens a store on the fixture's database (each call is a new connection). */
  open(options?: { log?: (line: string) => void; keepCheckpoints?: number }): Promise<CohortStore>;
  /** Runs SQL directly on the database (`?` placeholders) and returns the rows. */
  query(sql: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
  /** The committed migrations folder for this provider. */
  migrationsDir: string;
  /** Removes the database (file or schema). */
  destroy(): Promise<void>;
}

/** Runs a promise and returns the CohortError code it rejected with (fails the test otherwise). */
async function errorCodeOf(promise: Promise<unknown>): Promise<ErrorCode> {
  try {
    await promise;
  } catch (error) {
    if (isCohortError(error)) return error.code;
    throw error;
  }
  throw new Error('expected a CohortError, got success');
}

const SPEC = 'a'.repeat(64);

function experiment(name = 'mnist-fedavg') {
  return { name, task: 'mnist', config: { rounds: 5, lr: 0.1 }, modelSpecHash: SPEC };
}

/** A completed round with a checkpoint whose weights depend on the round number. */
function completedRound(experimentId: string, number: number): RoundRecordInput {
  const weights = new Uint8Array(64).map((_, i) => (i * 7 + number) % 256);
  return {
    experimentId,
    number,
    status: 'completed',
    failureReason: null,
    failureCode: null,
    secureAggregation: false,
    startedAt: new Date(Date.UTC(2026, 0, 1, 0, number, 0, 125)),
    finishedAt: new Date(Date.UTC(2026, 0, 1, 0, number, 30, 250)),
    durationMs: 30_125,
    participants: 0,
    dropped: 0,
    bytesReceived: 0,
    trainLoss: 1 / number,
    testAccuracy: 0.5 + number / 100,
    participations: [],
    metrics: {},
    checkpoint: { weights, strategyState: new Uint8Array([number]), modelHash: `hash-${number}` },
  };
}

/**
 * The behaviour every CohortStore must have, whatever the database. `makeFixture` gives a
 * fresh empty database per test.
 */
export function storeContract(makeFixture: () => Promise<StoreFixture>): void {
  let fixture: StoreFixture;
  const stores: CohortStore[] = [];
  const open = async (options?: Parameters<StoreFixture['open']>[0]) => {
    const store = await fixture.open(options);
    stores.push(store);
    return store;
  };

  beforeEach(async () => {
    fixture = await makeFixture();
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await fixture.destroy();
  });

  test('creates an experiment, then resumes it by name with its last completed round', async () => {
    const store = await open();
    const created = await store.openExperiment(experiment());
    expect(typeof created.experimentId).toBe('string');
    expect(created).toEqual({
      experimentId: created.experimentId,
      resumed: false,
      lastCompletedRound: 0,
    });
    expect(await store.listRounds(created.experimentId)).toEqual([]);
    expect(await store.latestCheckpoint(created.experimentId)).toBeNull();

    await store.recordRound(completedRound(created.experimentId, 1));
    await store.recordRound(completedRound(created.experimentId, 2));
    await store.close();

    const reopened = await open();
    const resumed = await reopened.openExperiment({ ...experiment(), config: { rounds: 9 } });
    expect(resumed).toEqual({
      experimentId: created.experimentId,
      resumed: true,
      lastCompletedRound: 2,
    });
    const rows = await fixture.query('SELECT config FROM experiments WHERE name = ?', [
      experiment().name,
    ]);
    expect(JSON.parse(String(rows[0]!.config))).toEqual({ rounds: 9 });
    const other = await reopened.openExperiment(experiment('another'));
    expect(other.experimentId).not.toBe(created.experimentId);
    expect(other.lastCompletedRound).toBe(0);
  });

  test('refuses to resume an experiment with another task or model spec', async () => {
    const store = await open();
    await store.openExperiment(experiment());
    expect(await errorCodeOf(store.openExperiment({ ...experiment(), task: 'cifar10' }))).toBe(
      'EXPERIMENT_MISMATCH',
    );
    expect(
      await errorCodeOf(store.openExperiment({ ...experiment(), modelSpecHash: 'b'.repeat(64) })),
    ).toBe('EXPERIMENT_MISMATCH');
  });

  test('round trip: round row, participations, metrics and checkpoint bytes', async () => {
    const store = await open();
    const { experimentId } = await store.openExperiment(experiment());
    const seenAt = new Date(Date.UTC(2026, 0, 1));
    await store.upsertClient({ id: 'c-1', publicKey: 'pk1', displayName: 'laptop', seenAt });
    await store.upsertClient({ id: 'c-2', publicKey: 'pk2', seenAt });
    await store.upsertClient({
      id: 'c-3',
      publicKey: 'pk3',
      displayName: 'tab',
      platform: 'browser',
      backend: 'wasm',
      seenAt,
    });
    // A Buffer view into a larger pool: the store must copy exactly its bytes.
    const pool = randomBytes(300_000);
    const weights = pool.subarray(17, 17 + 262_144);
    const strategyState = new Uint8Array(randomBytes(4096));
    const startedAt = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
    const finishedAt = new Date(Date.UTC(2026, 0, 2, 3, 5, 6, 789));
    await store.recordRound({
      experimentId,
      number: 1,
      status: 'completed',
      failureReason: null,
      failureCode: null,
      secureAggregation: true,
      startedAt,
      finishedAt,
      durationMs: 61_111,
      participants: 1,
      dropped: 1,
      bytesReceived: 5_000_000_123,
      trainLoss: 0.123456789012345,
      testLoss: Number.NaN,
      testAccuracy: 0.9871,
      participations: [
        { clientId: 'c-3', status: 'rejected', numExamples: 0, errorCode: 'UPDATE_SHAPE' },
        { clientId: 'c-1', status: 'completed', numExamples: 600, errorCode: null },
        { clientId: 'c-2', status: 'dropped', numExamples: 0, errorCode: 'CLIENT_DROPPED' },
      ],
      metrics: { selected: 3, rejected: 1, federated_accuracy: 0.25, diverged: Infinity },
      checkpoint: { weights, strategyState, modelHash: 'model-hash-1' },
    });

    const checkpoint = await store.latestCheckpoint(experimentId);
    expect(checkpoint).not.toBeNull();
    expect(checkpoint!.round).toBe(1);
    expect(checkpoint!.modelHash).toBe('model-hash-1');
    expect(Object.getPrototypeOf(checkpoint!.weights)).toBe(Uint8Array.prototype);
    expect(Buffer.from(checkpoint!.weights).equals(weights)).toBe(true);
    expect(Buffer.from(checkpoint!.strategyState).equals(strategyState)).toBe(true);

    const [round, ...rest] = await store.listRounds(experimentId);
    expect(rest).toEqual([]);
    expect(round!.checkpoint!.createdAt).toBeInstanceOf(Date);
    expect(round).toEqual({
      number: 1,
      attempt: 1,
      status: 'completed',
      failureReason: null,
      failureCode: null,
      secureAggregation: true,
      startedAt,
      finishedAt,
      durationMs: 61_111,
      participants: 1,
      dropped: 1,
      bytesReceived: 5_000_000_123,
      trainLoss: 0.123456789012345,
      testLoss: null,
      testAccuracy: 0.9871,
      participations: [
        {
          clientId: 'c-1',
          displayName: 'laptop',
          platform: 'node',
          status: 'completed',
          numExamples: 600,
          errorCode: null,
        },
        {
          clientId: 'c-2',
          displayName: null,
          platform: 'node',
          status: 'dropped',
          numExamples: 0,
          errorCode: 'CLIENT_DROPPED',
        },
        {
          clientId: 'c-3',
          displayName: 'tab',
          platform: 'browser',
          status: 'rejected',
          numExamples: 0,
          errorCode: 'UPDATE_SHAPE',
        },
      ],
      metrics: { diverged: null, federated_accuracy: 0.25, rejected: 1, selected: 3 },
      checkpoint: { modelHash: 'model-hash-1', createdAt: round!.checkpoint!.createdAt },
    });
  });

  test('records a failed round with its reason, then a retry of the same number', async () => {
    const store = await open();
    const { experimentId } = await store.openExperiment(experiment());
    await store.recordRound(completedRound(experimentId, 1));
    const failed: RoundRecordInput = {
      ...completedRound(experimentId, 2),
      status: 'failed',
      failureReason: 'only 1 of 3 clients answered before the deadline',
      failureCode: 'ROUND_ABORTED',
      trainLoss: null,
      testAccuracy: null,
      checkpoint: null,
    };
    await store.recordRound(failed);
    expect((await store.openExperiment(experiment())).lastCompletedRound).toBe(1);
    expect((await store.latestCheckpoint(experimentId))!.round).toBe(1);

    await store.recordRound(completedRound(experimentId, 2));
    const rounds = await store.listRounds(experimentId);
    expect(rounds.map((r) => [r.number, r.attempt, r.status])).toEqual([
      [1, 1, 'completed'],
      [2, 1, 'failed'],
      [2, 2, 'completed'],
    ]);
    expect(rounds[1]).toMatchObject({
      failureReason: 'only 1 of 3 clients answered before the deadline',
      failureCode: 'ROUND_ABORTED',
      trainLoss: null,
      testAccuracy: null,
      checkpoint: null,
    });
    expect((await store.openExperiment(experiment())).lastCompletedRound).toBe(2);
    // A completed round is final.
    expect(await errorCodeOf(store.recordRound(completedRound(experimentId, 2)))).toBe('INTERNAL');
  });

  test('a begun round is running until recorded; one left running is aborted with its reason', async () => {
    const store = await open();
    const { experimentId } = await store.openExperiment(experiment());
    const start = (number: number) => ({
      experimentId,
      number,
      secureAggregation: true,
      startedAt: new Date(Date.UTC(2026, 0, 1, 0, number)),
    });
    await store.beginRound(start(1));
    expect((await store.listRounds(experimentId)).map((r) => [r.number, r.status])).toEqual([
      [1, 'running'],
    ]);
    // Recording the round rewrites the running attempt, not a second one.
    await store.recordRound(completedRound(experimentId, 1));
    await store.beginRound(start(2));
    // A round cannot be begun twice, nor again once completed.
    expect(await errorCodeOf(store.beginRound(start(2)))).toBe('INTERNAL');
    expect(await errorCodeOf(store.beginRound(start(1)))).toBe('INTERNAL');
    await store.close();

    // The process ended with round 2 running: the next one finds it and marks it aborted.
    const next = await open();
    expect(await next.abortInterruptedRounds(experimentId, 'killed mid-round')).toEqual([2]);
    expect(await next.abortInterruptedRounds(experimentId, 'again')).toEqual([]);
    expect((await next.openExperiment(experiment())).lastCompletedRound).toBe(1);
    await next.beginRound(start(2));
    await next.recordRound(completedRound(experimentId, 2));
    const rounds = await next.listRounds(experimentId);
    expect(rounds.map((r) => [r.number, r.attempt, r.status, r.failureCode])).toEqual([
      [1, 1, 'completed', null],
      [2, 1, 'aborted', 'ROUND_ABORTED'],
      [2, 2, 'completed', null],
    ]);
    expect(rounds[1]).toMatchObject({
      failureReason: 'killed mid-round',
      secureAggregation: true,
      startedAt: start(2).startedAt,
      participants: 0,
      participations: [],
      checkpoint: null,
    });
    expect((await next.latestCheckpoint(experimentId))!.round).toBe(2);
  });

  test('refuses inconsistent rounds without writing anything', async () => {
    const store = await open();
    const { experimentId } = await store.openExperiment(experiment());
    const noCheckpoint = { ...completedRound(experimentId, 1), checkpoint: null };
    expect(await errorCodeOf(store.recordRound(noCheckpoint))).toBe('INTERNAL');
    const failedWithoutReason: RoundRecordInput = {
      ...completedRound(experimentId, 1),
      status: 'failed',
      checkpoint: null,
    };
    expect(await errorCodeOf(store.recordRound(failedWithoutReason))).toBe('INTERNAL');
    const unknownClient: RoundRecordInput = {
      ...completedRound(experimentId, 1),
      participations: [
        { clientId: 'nobody', status: 'completed', numExamples: 1, errorCode: null },
      ],
    };
    expect(await errorCodeOf(store.recordRound(unknownClient))).toBe('INTERNAL');
    const negative = { ...completedRound(experimentId, 1), dropped: -1 };
    expect(await errorCodeOf(store.recordRound(negative))).toBe('INTERNAL');
    const unknownExperiment = completedRound('no-such-experiment', 1);
    expect(await errorCodeOf(store.recordRound(unknownExperiment))).toBe('INTERNAL');
    expect(await store.listRounds(experimentId)).toEqual([]);
    expect(await fixture.query('SELECT id FROM checkpoints')).toEqual([]);
  });

  test('keeps only the newest checkpoints of each experiment', async () => {
    const store = await open({ keepCheckpoints: 3 });
    const a = (await store.openExperiment(experiment('a'))).experimentId;
    const b = (await store.openExperiment(experiment('b'))).experimentId;
    await store.recordRound(completedRound(b, 1));
    for (let n = 1; n <= 5; n++) await store.recordRound(completedRound(a, n));
    const kept = (await store.listRounds(a)).map((r) => [
      r.number,
      r.checkpoint?.modelHash ?? null,
    ]);
    expect(kept).toEqual([
      [1, null],
      [2, null],
      [3, 'hash-3'],
      [4, 'hash-4'],
      [5, 'hash-5'],
    ]);
    const latest = await store.latestCheckpoint(a);
    expect(latest!.round).toBe(5);
    expect(Array.from(latest!.weights)).toEqual(
      Array.from(completedRound(a, 5).checkpoint!.weights),
    );
    // The other experiment's checkpoint is untouched.
    expect((await store.latestCheckpoint(b))!.modelHash).toBe('hash-1');
    const rows = await fixture.query(
      'SELECT round_number FROM checkpoints WHERE experiment_id = ?',
      [a],
    );
    expect(rows.map((r) => Number(r.round_number)).sort()).toEqual([3, 4, 5]);

    const keepOne = await open({ keepCheckpoints: 1 });
    await keepOne.recordRound(completedRound(a, 6));
    expect(
      (await keepOne.listRounds(a)).filter((r) => r.checkpoint !== null).map((r) => r.number),
    ).toEqual([6]);
  });

  test('records clients, keeps the newest last-seen time, refuses a changed public key', async () => {
    const store = await open();
    const first = new Date(Date.UTC(2026, 0, 1));
    const later = new Date(Date.UTC(2026, 0, 3));
    await store.upsertClient({ id: 'c-1', publicKey: 'pk', seenAt: first });
    await store.upsertClient({ id: 'c-1', publicKey: 'pk', displayName: 'phone', seenAt: later });
    await store.upsertClient({
      id: 'c-1',
      publicKey: 'pk',
      seenAt: new Date(Date.UTC(2026, 0, 2)),
    });
    const [row] = await fixture.query(
      'SELECT display_name, first_seen_at, last_seen_at FROM clients WHERE id = ?',
      ['c-1'],
    );
    expect(row!.display_name).toBe('phone');
    expect(new Date(row!.first_seen_at as string).getTime()).toBe(first.getTime());
    expect(new Date(row!.last_seen_at as string).getTime()).toBe(later.getTime());
    expect(
      await errorCodeOf(store.upsertClient({ id: 'c-1', publicKey: 'other', seenAt: later })),
    ).toBe('AUTH_FAILED');
  });

  test('applies migrations once, recorded in _prisma_migrations as Prisma does', async () => {
    // Whole seconds: the database may round a timestamp to milliseconds or seconds.
    const before = Math.floor(Date.now() / 1000) * 1000;
    const firstLog: string[] = [];
    await (await open({ log: (line) => firstLog.push(line) })).close();
    const secondLog: string[] = [];
    const store = await open({ log: (line) => secondLog.push(line) });
    await store.openExperiment(experiment());

    const names = readdirSync(fixture.migrationsDir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    expect(names.length).toBeGreaterThan(0);
    expect(firstLog.filter((l) => l.includes('applied migration'))).toEqual(
      names.map((name) => `database: applied migration ${name}`),
    );
    expect(secondLog.filter((l) => l.includes('applied migration'))).toEqual([]);

    const rows = await fixture.query(
      `SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at,
              applied_steps_count
       FROM _prisma_migrations ORDER BY migration_name`,
    );
    expect(rows.map((r) => r.migration_name)).toEqual(names);
    rows.forEach((row, i) => {
      const sql = readFileSync(join(fixture.migrationsDir, names[i]!, 'migration.sql'));
      expect(row.checksum).toBe(createHash('sha256').update(sql).digest('hex'));
      expect(row.id).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      expect(row.finished_at).not.toBeNull();
      expect(row.rolled_back_at).toBeNull();
      expect(row.logs).toBeNull();
      expect(Number(row.applied_steps_count)).toBe(1);
      const started = new Date(row.started_at as string).getTime();
      const finished = new Date(row.finished_at as string).getTime();
      expect(started).toBeGreaterThanOrEqual(before);
      expect(finished).toBeGreaterThanOrEqual(started);
      expect(finished).toBeLessThanOrEqual(Date.now());
    });
  });

  test('close is idempotent and later calls fail with DATABASE_ERROR', async () => {
    const store = await open();
    const { experimentId } = await store.openExperiment(experiment());
    await store.close();
    await store.close();
    expect(await errorCodeOf(store.listRounds(experimentId))).toBe('DATABASE_ERROR');
  });
}
