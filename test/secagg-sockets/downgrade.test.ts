import type { NodeClientOptions } from '../../client-node/node-client';
import type { ClientState } from '../../shared/client/client-session';
import type { Dataset } from '../../shared/data/dataset';
import { isCohortError } from '../../shared/errors';
import type { FitIns, ModelPayload } from '../../shared/protocol/messages';
import { useWasmBackend } from '../helpers/backend';
import { slice } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import type { RecordedConnection, RecordingOptions } from '../helpers/recording-coordinator';
import { mnistModelPayload } from '../helpers/coordinator-fixtures';
import { QUICK_FIT, binaryFrames } from '../helpers/recording-coordinator';
import type { RecordedClient } from '../helpers/recorded-clients';
import { RecordedClientPool } from '../helpers/recorded-clients';

/**
 * No silent downgrade: the client, not the coordinator, decides that its rounds are secure.
 * A hand-written coordinator registers a real Node client (with its SecAggSubmission) and then
 * asks for a plain update; the raw engine.io frames the client sent show that nothing of the
 * update left it. A control client that allows plain rounds shows the same capture does see
 * an update when one is sent.
 */

const TRAIN = 64;

let backend: string;
let data: { train: Dataset; test: Dataset };
let model: ModelPayload;
let modelBytes: number;
const pool = new RecordedClientPool(() => ({
  task: 'mnist',
  train: slice(data.train, 0, TRAIN),
  test: data.test,
  backend,
}));

beforeAll(async () => {
  backend = await useWasmBackend();
  data = await smallMnist(TRAIN, 16);
  model = await mnistModelPayload(5);
  modelBytes = model.manifest.length * 4;
});
afterEach(() => pool.closeAll());

function setup(
  server: RecordingOptions,
  client: Partial<NodeClientOptions> = {},
): Promise<RecordedClient> {
  return pool.start(server, client);
}

function fitRequest(roundId: string, secure: boolean): FitIns {
  return {
    roundId,
    round: 1,
    model,
    config: QUICK_FIT,
    deadlineMs: 60_000,
    secure,
  };
}

/** Text of every frame the client sent after the first `skip` frames. */
function textAfter(connection: RecordedConnection, skip: number): string[] {
  return connection.frames
    .slice(skip)
    .map((f) => f.data)
    .filter((d): d is string => typeof d === 'string');
}

/** Waits until the session has reported `state` (registration is answered asynchronously). */
async function waitForState(states: ClientState[], state: ClientState): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!states.includes(state)) {
    if (Date.now() > deadline) throw new Error(`never reached ${state}: ${states.join(' → ')}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('no silent downgrade to plain rounds', () => {
  test('a plain fit request to a secure-only client is refused before training; no update bytes leave it', async () => {
    const { coordinator, states } = await setup({ secureAggregation: true });
    const connection = await coordinator.registered();
    await waitForState(states, 'idle');
    const before = connection.frames.length;

    const ack = (await connection.request('fit', fitRequest('downgrade-r1', false))) as Record<
      string,
      unknown
    >;
    expect(ack).toMatchObject({
      status: 'error',
      roundId: 'downgrade-r1',
      code: 'SECAGG_REQUIRED',
    });
    expect(String(ack.message)).toMatch(/--allow-plain/);
    expect(ack).not.toHaveProperty('update');
    // Refused before training: the trainer never ran and no progress was reported.
    expect(states).not.toContain('training');
    expect(connection.progress).toEqual([]);

    // The raw frames: no binary attachment at all, nothing near the model's size, and no
    // acknowledgement that names an update.
    expect(binaryFrames(connection.frames)).toEqual([]);
    const sent = textAfter(connection, before);
    expect(sent.length).toBeGreaterThan(0); // the refusal itself
    for (const text of sent) {
      expect(text.length).toBeLessThan(modelBytes / 10);
      expect(text).not.toMatch(/"update"/);
      expect(text).not.toMatch(/_placeholder/);
    }

    // The session is still there for secure rounds.
    expect(states.at(-1)).toBe('idle');
  });

  test('control: a client that allows plain rounds does send its update, and the capture sees it', async () => {
    const { coordinator, states } = await setup(
      { secureAggregation: false },
      { allowPlain: true, shareMetrics: false },
    );
    const connection = await coordinator.registered();
    await waitForState(states, 'idle');
    const ack = (await connection.request('fit', fitRequest('plain-r1', false))) as Record<
      string,
      unknown
    >;
    expect(ack).toMatchObject({ status: 'ok', roundId: 'plain-r1', numExamples: TRAIN });
    expect(ack.update).toBeDefined();
    const binary = binaryFrames(connection.frames);
    expect(binary.map((b) => b.byteLength)).toContain(modelBytes);
    // A plain session reports its loss with its progress.
    expect(connection.progress.length).toBeGreaterThan(0);
    expect(
      connection.progress.every((p) => typeof (p as { loss?: unknown }).loss === 'number'),
    ).toBe(true);
  });

  test('a registration answer offering plain rounds ends a secure-only session with SECAGG_REQUIRED', async () => {
    const { coordinator, client, states } = await setup({ secureAggregation: false });
    const error: unknown = await client.session.finished.then(
      () => new Error('session finished normally'),
      (e: unknown) => e,
    );
    expect(isCohortError(error, 'SECAGG_REQUIRED')).toBe(true);
    expect((error as Error).message).toMatch(/--allow-plain/);
    expect(states.at(-1)).toBe('done');
    const connection = await coordinator.registered();
    // It registered (to learn the mode) but sent nothing else: no training, no update.
    expect(binaryFrames(connection.frames)).toEqual([]);
    expect(connection.progress).toEqual([]);
    await waitUntil(() => connection.socket.disconnected);
  });

  test('a challenge announcing plain rounds ends a secure-only session before it registers', async () => {
    const { coordinator, client } = await setup({
      challenge: (honest) => ({ ...honest, secureAggregation: false }),
    });
    const error: unknown = await client.session.finished.then(
      () => new Error('session finished normally'),
      (e: unknown) => e,
    );
    expect(isCohortError(error, 'SECAGG_REQUIRED')).toBe(true);
    expect(coordinator.connections).toHaveLength(1);
    expect(coordinator.connections[0]!.registrations).toEqual([]);
  });

  test('a challenge claiming secure rounds does not override a plain registration answer', async () => {
    const { client } = await setup({
      secureAggregation: false,
      challenge: (honest) => ({ ...honest, secureAggregation: true }),
    });
    const error: unknown = await client.session.finished.then(
      () => new Error('session finished normally'),
      (e: unknown) => e,
    );
    expect(isCohortError(error, 'SECAGG_REQUIRED')).toBe(true);
  });

  test('a secure-only client does not trust a secure registration followed by a plain fit even when rounds repeat', async () => {
    const { coordinator, states } = await setup({ secureAggregation: true });
    const connection = await coordinator.registered();
    await waitForState(states, 'idle');
    for (let round = 1; round <= 3; round++) {
      const ack = (await connection.request('fit', {
        ...fitRequest(`repeat-r${round}`, false),
        round,
      })) as Record<string, unknown>;
      expect(ack).toMatchObject({ status: 'error', code: 'SECAGG_REQUIRED' });
    }
    expect(binaryFrames(connection.frames)).toEqual([]);
    expect(states).not.toContain('training');
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
