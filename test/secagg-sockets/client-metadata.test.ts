import type { NodeClientOptions } from '../../client-node/node-client';
import type { Dataset } from '../../shared/data/dataset';
import type { ModelPayload } from '../../shared/protocol/messages';
import { useWasmBackend } from '../helpers/backend';
import { slice } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import type { RecordingOptions } from '../helpers/recording-coordinator';
import { RecordedClientPool } from '../helpers/recorded-clients';
import { mnistModelPayload } from '../helpers/coordinator-fixtures';
import { QUICK_FIT, binaryFrames } from '../helpers/recording-coordinator';

/**
 * What leaves a client in the clear in a secure session: registration carries no example
 * counts (unless it shares its metrics), the fit acknowledgement only its status, progress
 * only the fraction done, and evaluation metrics only with `shareMetrics`.
 */

const TRAIN = 48;
const TEST = 16;

let backend: string;
let data: { train: Dataset; test: Dataset };
let model: ModelPayload;
const pool = new RecordedClientPool(() => ({
  task: 'mnist',
  train: slice(data.train, 0, TRAIN),
  test: data.test,
  backend,
}));

beforeAll(async () => {
  backend = await useWasmBackend();
  data = await smallMnist(TRAIN, TEST);
  model = await mnistModelPayload(9);
});
afterEach(() => pool.closeAll());

async function setup(server: RecordingOptions, client: Partial<NodeClientOptions> = {}) {
  const started = await pool.start(server, client);
  const connection = await started.coordinator.registered();
  const deadline = Date.now() + 10_000;
  while (!started.states.includes('idle') && !started.states.includes('done')) {
    if (Date.now() > deadline) throw new Error(`never registered: ${started.states.join(' → ')}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { ...started, connection };
}

describe('registration metadata', () => {
  test.each([
    ['secure only, metrics private', {}, { trainExamples: 0, testExamples: 0 }],
    [
      'secure only, --share-metrics',
      { shareMetrics: true },
      { trainExamples: TRAIN, testExamples: TEST },
    ],
    ['--allow-plain', { allowPlain: true }, { trainExamples: TRAIN, testExamples: TEST }],
  ] as const)('%s: example counts at registration', async (_name, options, expected) => {
    const { connection } = await setup({ secureAggregation: true }, options);
    expect(connection.registrations).toHaveLength(1);
    expect(connection.registrations[0]).toMatchObject(expected);
  });
});

describe('a secure fit', () => {
  test('is acknowledged with its status only; progress carries the fraction only', async () => {
    const { connection, states } = await setup({ secureAggregation: true });
    const ack = (await connection.request('fit', {
      roundId: 'meta-r1',
      round: 1,
      model,
      config: QUICK_FIT,
      deadlineMs: 60_000,
      secure: true,
    })) as Record<string, unknown>;
    expect(states).toContain('training');
    expect(ack).toEqual({ status: 'ok', roundId: 'meta-r1', modelHash: model.modelHash });
    expect(connection.progress.length).toBeGreaterThan(0);
    for (const progress of connection.progress) {
      expect(Object.keys(progress as object).sort()).toEqual(['fraction', 'roundId']);
    }
    // Nothing binary left the client: the update waits for the masked-input phase.
    expect(binaryFrames(connection.frames)).toEqual([]);
  });
});

describe('evaluation metrics', () => {
  const evaluate = () => ({ roundId: 'eval-r1', model, batchSize: 16, deadlineMs: 60_000 });

  test('a secure session keeps them private by default (METRICS_PRIVATE), without evaluating', async () => {
    const { connection, states } = await setup({ secureAggregation: true });
    const ack = await connection.request('evaluate', evaluate());
    expect(ack).toMatchObject({ status: 'error', roundId: 'eval-r1', code: 'METRICS_PRIVATE' });
    expect(String((ack as { message: string }).message)).toMatch(/--share-metrics/);
    expect(states).not.toContain('evaluating');
  });

  test('a secure session with shareMetrics reports them', async () => {
    const { connection } = await setup({ secureAggregation: true }, { shareMetrics: true });
    const ack = await connection.request('evaluate', evaluate());
    expect(ack).toMatchObject({ status: 'ok', roundId: 'eval-r1', numExamples: TEST });
  });

  test('a plain session answers as before', async () => {
    const { connection } = await setup({ secureAggregation: false }, { allowPlain: true });
    const ack = await connection.request('evaluate', evaluate());
    expect(ack).toMatchObject({ status: 'ok', roundId: 'eval-r1', numExamples: TEST });
  });
});
