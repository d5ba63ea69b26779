import { toHex, utf8Bytes } from '../../shared/bytes';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeClient } from '../../client-node/node-client';
import { Coordinator } from '../../coordinator/coordinator';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import type { RunHistory } from '../../coordinator/history';
import type { Dataset } from '../../shared/data/dataset';
import { generateIdentity, signDetached } from '../../shared/identity';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';
import { PROTOCOL_VERSION, registrationMessage } from '../../shared/protocol/messages';
import { useWasmBackend } from '../helpers/backend';
import { closeAll, startClients } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRounds } from '../helpers/persisted-rounds';
import { connectRawSocket, emitAndWait } from '../helpers/raw-socket';
import type { RawSocket } from '../helpers/raw-socket';
import { connectScriptedClient } from '../helpers/scripted-client';
import type { ScriptedClient } from '../helpers/scripted-client';

const HONEST = 2;
const PER_CLIENT = 100;
/** What every rogue claims at registration; the honest clients hold as many examples. */
const ROGUE_EXAMPLES = 100;

let backend: string;
let data: { train: Dataset; test: Dataset };
let dir: string;
let clients: NodeClient[] = [];
let rogues: ScriptedClient[] = [];
let raws: RawSocket[] = [];
let coordinators: Coordinator[] = [];

beforeAll(async () => {
  backend = await useWasmBackend();
  data = await smallMnist(HONEST * PER_CLIENT, 300);
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-malformed-'));
});
afterEach(async () => {
  closeAll(clients);
  clients = [];
  for (const rogue of rogues) rogue.close();
  rogues = [];
  for (const raw of raws) raw.close();
  raws = [];
  for (const c of coordinators) await c.stop();
  coordinators = [];
  rmSync(dir, { recursive: true, force: true });
});

/** Plain mode (secure aggregation is the default), small batches, seeded, generous deadline. */
function options(
  database: string,
  overrides: Partial<CoordinatorConfigInput>,
): CoordinatorConfigInput {
  return {
    host: '127.0.0.1',
    port: 0,
    secureAggregation: false,
    batchSize: 16,
    learningRate: 0.1,
    seed: 11,
    overSelection: 0,
    roundTimeoutMs: 60_000,
    database,
    ...overrides,
  };
}

async function startCoordinator(config: CoordinatorConfigInput): Promise<Coordinator> {
  const coordinator = await Coordinator.start(config, { testSet: data.test });
  coordinators.push(coordinator);
  return coordinator;
}

// ---------------------------------------------------------------------------------------
// Rogue fit answers. Each rogue registers honestly, then answers every `fit` with one defect.

interface FitRequest {
  roundId: string;
  modelHash: string;
  modelLength: number;
}

function readFit(ins: Record<string, unknown>): FitRequest {
  const model = ins.model as { modelHash: string; manifest: { length: number } };
  return {
    roundId: ins.roundId as string,
    modelHash: model.modelHash,
    modelLength: model.manifest.length,
  };
}

/** A well-formed answer (a zero delta), which each rogue then breaks in one way. */
function wellFormed(fit: FitRequest): Record<string, unknown> {
  return {
    status: 'ok',
    roundId: fit.roundId,
    modelHash: fit.modelHash,
    numExamples: ROGUE_EXAMPLES,
    trainLoss: 0.5,
    update: new Uint8Array(fit.modelLength * 4),
  };
}

function floatBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

const ROGUES: ReadonlyArray<{ name: string; code: string; answer(fit: FitRequest): unknown }> = [
  {
    name: 'update one float short',
    code: 'UPDATE_SHAPE',
    answer: (fit) => ({ ...wellFormed(fit), update: new Uint8Array((fit.modelLength - 1) * 4) }),
  },
  {
    name: 'update one float too long',
    code: 'UPDATE_SHAPE',
    answer: (fit) => ({ ...wellFormed(fit), update: new Uint8Array((fit.modelLength + 1) * 4) }),
  },
  {
    name: 'update bytes not a whole number of floats',
    code: 'UPDATE_SHAPE',
    answer: (fit) => ({ ...wellFormed(fit), update: new Uint8Array(fit.modelLength * 4 - 2) }),
  },
  {
    name: 'update containing NaN',
    code: 'UPDATE_NON_FINITE',
    answer: (fit) => {
      const values = new Float32Array(fit.modelLength);
      values[fit.modelLength - 3] = Number.NaN;
      return { ...wellFormed(fit), update: floatBytes(values) };
    },
  },
  {
    name: 'update containing Infinity',
    code: 'UPDATE_NON_FINITE',
    answer: (fit) => {
      const values = new Float32Array(fit.modelLength);
      values[0] = Number.POSITIVE_INFINITY;
      return { ...wellFormed(fit), update: floatBytes(values) };
    },
  },
  {
    name: 'update for another round id',
    code: 'UPDATE_STALE',
    answer: (fit) => ({ ...wellFormed(fit), roundId: `${fit.roundId}-old` }),
  },
  {
    name: 'update trained from another model',
    code: 'MODEL_HASH_MISMATCH',
    answer: (fit) => ({ ...wellFormed(fit), modelHash: 'ab'.repeat(32) }),
  },
  {
    name: 'answer missing its fields',
    code: 'MESSAGE_INVALID',
    answer: (fit) => ({ status: 'ok', roundId: fit.roundId }),
  },
  {
    name: 'answer with wrong field types',
    code: 'MESSAGE_INVALID',
    answer: (fit) => ({
      ...wellFormed(fit),
      numExamples: String(ROGUE_EXAMPLES),
      trainLoss: 'low',
    }),
  },
  {
    name: 'empty acknowledgement',
    code: 'MESSAGE_INVALID',
    answer: () => undefined,
  },
  {
    name: 'non-finite train loss',
    code: 'MESSAGE_INVALID',
    answer: (fit) => ({ ...wellFormed(fit), trainLoss: Number.NaN }),
  },
  {
    name: 'numExamples far above what it registered',
    code: 'MESSAGE_INVALID',
    answer: (fit) => ({ ...wellFormed(fit), numExamples: ROGUE_EXAMPLES * 10_000 }),
  },
  {
    name: 'update as a JSON number array',
    code: 'MESSAGE_INVALID',
    answer: (fit) => ({
      ...wellFormed(fit),
      update: Array.from({ length: fit.modelLength }, () => 0),
    }),
  },
  {
    name: 'plain-mode answer without its example count',
    code: 'MESSAGE_INVALID',
    answer: (fit) => {
      const { numExamples: _dropped, ...rest } = wellFormed(fit);
      return rest;
    },
  },
  {
    name: 'plain-mode answer without its train loss',
    code: 'MESSAGE_INVALID',
    answer: (fit) => {
      const { trainLoss: _dropped, ...rest } = wellFormed(fit);
      return rest;
    },
  },
  {
    name: 'plain-mode answer without an update',
    code: 'UPDATE_SHAPE',
    answer: (fit) => {
      const { update: _dropped, ...rest } = wellFormed(fit);
      return rest;
    },
  },
  {
    name: 'error status with an unpublished code',
    code: 'TRAINING_FAILED',
    answer: (fit) => ({
      status: 'error',
      roundId: fit.roundId,
      code: 'DROP_TABLES',
      message: 'nope',
    }),
  },
];

async function registeredId(client: ScriptedClient): Promise<string> {
  const res = (await client.registered) as { status: string; clientId?: string; code?: string };
  if (res.status !== 'ok' || res.clientId === undefined) {
    throw new Error(`scripted client failed to register: ${JSON.stringify(res)}`);
  }
  return res.clientId;
}

/** Runs `rounds` rounds with the two honest clients and whatever joined before them. */
async function runWithHonestClients(
  coordinator: Coordinator,
): Promise<{ history: RunHistory; honestIds: string[] }> {
  clients = await startClients(coordinator.url, HONEST, data, PER_CLIENT, backend, () => ({
    allowPlain: true,
  }));
  const history = await coordinator.done;
  const honestIds = clients.map((c) => c.session.id).filter((id): id is string => id !== null);
  expect(honestIds).toHaveLength(HONEST);
  return { history, honestIds };
}

describe('malformed fit answers', () => {
  test('each rogue is rejected with its code; the round aggregates the honest clients only, twice', async () => {
    const database = `file:${join(dir, 'rogues.db')}`;
    const coordinator = await startCoordinator(
      options(database, { experiment: 'rogues', rounds: 2, minClients: HONEST + ROGUES.length }),
    );
    const rogueIds = new Map<string, { name: string; code: string }>();
    for (const rogue of ROGUES) {
      const client = await connectScriptedClient(
        coordinator.url,
        { fit: (ins) => rogue.answer(readFit(ins)) },
        { trainExamples: ROGUE_EXAMPLES },
      );
      rogues.push(client);
      rogueIds.set(await registeredId(client), rogue);
    }
    const { history, honestIds } = await runWithHonestClients(coordinator);

    for (const round of history.rounds) {
      expect(round).toMatchObject({
        status: 'completed',
        participants: HONEST,
        rejected: ROGUES.length,
        dropped: 0,
        selected: HONEST + ROGUES.length,
      });
      expect(round.testAccuracy).toBeGreaterThanOrEqual(0);
      expect(round.testAccuracy).toBeLessThanOrEqual(1);
      expect(Number.isFinite(round.trainLoss)).toBe(true);
    }

    const persisted = await readPersistedRounds(database, 'rogues');
    expect(persisted.map((r) => [r.number, r.status, r.participants])).toEqual([
      [1, 'completed', HONEST],
      [2, 'completed', HONEST],
    ]);
    for (const round of persisted) {
      const byClient = new Map(round.participations.map((p) => [p.clientId, p]));
      for (const id of honestIds) {
        expect(byClient.get(id)).toMatchObject({
          status: 'completed',
          numExamples: PER_CLIENT,
          errorCode: null,
        });
      }
      const seen = [...rogueIds].map(([id, rogue]) => ({
        rogue: rogue.name,
        status: byClient.get(id)?.status,
        errorCode: byClient.get(id)?.errorCode,
        numExamples: byClient.get(id)?.numExamples,
      }));
      expect(seen).toEqual(
        [...rogueIds.values()].map((rogue) => ({
          rogue: rogue.name,
          status: 'rejected',
          errorCode: rogue.code,
          numExamples: 0,
        })),
      );
    }

    // The same two honest clients alone, same seed and data: the very same global models.
    const reference = await startCoordinator(
      options(`file:${join(dir, 'reference.db')}`, {
        experiment: 'reference',
        rounds: 2,
        minClients: HONEST,
      }),
    );
    closeAll(clients);
    const alone = await runWithHonestClients(reference);
    const referenceRounds = await readPersistedRounds(
      `file:${join(dir, 'reference.db')}`,
      'reference',
    );
    expect(referenceRounds.map((r) => r.checkpoint?.modelHash)).toEqual(
      persisted.map((r) => r.checkpoint?.modelHash),
    );
    expect(alone.history.rounds.map((r) => r.testAccuracy)).toEqual(
      history.rounds.map((r) => r.testAccuracy),
    );
    expect(alone.history.rounds.map((r) => r.trainLoss)).toEqual(
      history.rounds.map((r) => r.trainLoss),
    );
  }, 120_000);
});

describe('secure fit answers carry no metadata', () => {
  test('a secure answer with an example count, a train loss or an update is refused', async () => {
    const database = `file:${join(dir, 'secure-meta.db')}`;
    const coordinator = await startCoordinator(
      options(database, {
        experiment: 'secure-meta',
        rounds: 1,
        minClients: 3,
        secureAggregation: true,
        evaluation: 'none',
      }),
    );
    const leaks: Array<{ name: string; extra: (fit: FitRequest) => Record<string, unknown> }> = [
      { name: 'example count', extra: () => ({ numExamples: ROGUE_EXAMPLES }) },
      { name: 'train loss', extra: () => ({ trainLoss: 0.5 }) },
      { name: 'update', extra: (fit) => ({ update: new Uint8Array(fit.modelLength * 4) }) },
    ];
    const secureFlags: unknown[] = [];
    const ids = new Map<string, string>();
    for (const leak of leaks) {
      const client = await connectScriptedClient(coordinator.url, {
        fit: (ins) => {
          secureFlags.push(ins.secure);
          const fit = readFit(ins);
          return {
            status: 'ok',
            roundId: fit.roundId,
            modelHash: fit.modelHash,
            ...leak.extra(fit),
          };
        },
      });
      rogues.push(client);
      ids.set(await registeredId(client), leak.name);
    }
    const history = await coordinator.done;
    expect(secureFlags).toEqual([true, true, true]);
    expect(history.rounds[0]).toMatchObject({ status: 'failed', participants: 0, rejected: 3 });
    const persisted = await readPersistedRounds(database, 'secure-meta');
    expect(
      persisted[0]!.participations
        .map((p) => ({ leak: ids.get(p.clientId), status: p.status, errorCode: p.errorCode }))
        .sort((x, y) => (x.leak! < y.leak! ? -1 : 1)),
    ).toEqual(
      leaks
        .map((leak) => ({ leak: leak.name, status: 'rejected', errorCode: 'MESSAGE_INVALID' }))
        .sort((x, y) => (x.leak < y.leak ? -1 : 1)),
    );
  }, 60_000);
});

// ---------------------------------------------------------------------------------------
// Refused registrations and junk traffic.

type Ack = { status?: string; code?: string; clientId?: string };

/** A registration body signed correctly for `raw`'s challenge, before any tampering. */
async function signedRegistration(raw: RawSocket, overrides: Record<string, unknown> = {}) {
  const identity = generateIdentity();
  const publicKey = toHex(identity.publicKey);
  const message = registrationMessage(raw.challenge.nonce, raw.challenge.coordinatorId, publicKey);
  return {
    protocolVersion: PROTOCOL_VERSION,
    publicKey,
    signature: toHex(signDetached(utf8Bytes(message), identity)),
    task: 'mnist',
    modelSpecHash: await specHash(getModelSpec('mnist')),
    platform: 'node',
    backend: 'raw',
    trainExamples: 10,
    testExamples: 0,
    ...overrides,
  };
}

async function raw(url: string): Promise<RawSocket> {
  const socket = await connectRawSocket(url);
  raws.push(socket);
  return socket;
}

describe('refused registrations and junk events', () => {
  test('bad registrations get an error ack with the right code and never count; junk does not crash', async () => {
    const database = `file:${join(dir, 'refusals.db')}`;
    const coordinator = await startCoordinator(
      options(database, { experiment: 'refusals', rounds: 1, minClients: HONEST }),
    );
    const joined: string[] = [];
    coordinator.on('client-joined', (c) => joined.push(c.clientId));
    const url = coordinator.url;

    // A signature over the right message by another key; one over another nonce; all-zero bytes.
    const forged = await raw(url);
    const impostor = generateIdentity();
    const forgedBody = await signedRegistration(forged);
    forgedBody.signature = toHex(
      signDetached(
        utf8Bytes(
          registrationMessage(
            forged.challenge.nonce,
            forged.challenge.coordinatorId,
            forgedBody.publicKey,
          ),
        ),
        impostor,
      ),
    );
    const replay = await raw(url);
    const other = await raw(url);
    const replayed = await signedRegistration(other);
    const zeros = await raw(url);
    const cifarHash = await specHash(getModelSpec('cifar10'));

    const cases: Array<{ name: string; socket: RawSocket; body: unknown; code: string }> = [
      { name: 'signature by another key', socket: forged, body: forgedBody, code: 'AUTH_FAILED' },
      {
        name: "signature over another connection's nonce",
        socket: replay,
        body: replayed,
        code: 'AUTH_FAILED',
      },
      {
        name: 'all-zero signature',
        socket: zeros,
        body: await signedRegistration(zeros, { signature: '00'.repeat(64) }),
        code: 'AUTH_FAILED',
      },
    ];
    const more: Array<{
      name: string;
      body: (s: RawSocket) => unknown;
      code: string;
    }> = [
      {
        name: 'wrong task',
        body: (s) => signedRegistration(s, { task: 'cifar10', modelSpecHash: cifarHash }),
        code: 'TASK_MISMATCH',
      },
      {
        name: 'right task, other model',
        body: (s) => signedRegistration(s, { modelSpecHash: cifarHash }),
        code: 'TASK_MISMATCH',
      },
      {
        name: 'unknown task',
        body: (s) => signedRegistration(s, { task: 'imagenet' }),
        code: 'TASK_MISMATCH',
      },
      {
        name: 'newer protocol',
        body: (s) => signedRegistration(s, { protocolVersion: PROTOCOL_VERSION + 1 }),
        code: 'PROTOCOL_VERSION',
      },
      { name: 'string payload', body: () => 'garbage', code: 'MESSAGE_INVALID' },
      { name: 'number payload', body: () => 42, code: 'MESSAGE_INVALID' },
      { name: 'null payload', body: () => null, code: 'MESSAGE_INVALID' },
      { name: 'array payload', body: () => [1, 2, 3], code: 'MESSAGE_INVALID' },
      { name: 'binary payload', body: () => new Uint8Array(4096).fill(7), code: 'MESSAGE_INVALID' },
      { name: 'empty object', body: () => ({}), code: 'MESSAGE_INVALID' },
      {
        name: 'public key not hex',
        body: (s) => signedRegistration(s, { publicKey: 'zz'.repeat(32) }),
        code: 'MESSAGE_INVALID',
      },
      {
        name: 'negative example count',
        body: (s) => signedRegistration(s, { trainExamples: -1 }),
        code: 'MESSAGE_INVALID',
      },
      {
        name: 'client nonce not 32 bytes of hex',
        body: (s) => signedRegistration(s, { clientNonce: 'ab'.repeat(8) }),
        code: 'MESSAGE_INVALID',
      },
      {
        name: 'fractional protocol version',
        body: (s) => signedRegistration(s, { protocolVersion: 1.5 }),
        code: 'MESSAGE_INVALID',
      },
      {
        name: 'unknown platform',
        body: (s) => signedRegistration(s, { platform: 'toaster' }),
        code: 'MESSAGE_INVALID',
      },
      {
        name: 'oversized display name',
        body: (s) => signedRegistration(s, { displayName: 'x'.repeat(100_000) }),
        code: 'MESSAGE_INVALID',
      },
      {
        name: 'deeply nested object',
        body: () => {
          let nested: unknown = 'bottom';
          for (let i = 0; i < 500; i++) nested = { publicKey: nested };
          return nested;
        },
        code: 'MESSAGE_INVALID',
      },
    ];
    for (const c of more) {
      const socket = await raw(url);
      cases.push({ name: c.name, socket, body: await c.body(socket), code: c.code });
    }

    const answers = [];
    for (const c of cases) {
      const ack = (await emitAndWait(c.socket, 'register', c.body)) as Ack;
      answers.push({ name: c.name, status: ack.status, code: ack.code });
    }
    expect(answers).toEqual(cases.map((c) => ({ name: c.name, status: 'error', code: c.code })));
    expect(coordinator.connectedClients).toBe(0);
    expect(joined).toEqual([]);

    // Junk on a fresh connection: unknown events, requests without an ack, bogus progress,
    // server-to-client event names, a register without an ack and a torn socket.io packet.
    const junk = await raw(url);
    junk.socket.emit('register');
    junk.socket.emit('register', await signedRegistration(junk));
    junk.socket.emit('progress', { roundId: '../../etc', fraction: 7 });
    junk.socket.emit('progress', 'junk');
    junk.socket.emit('fit', { roundId: 'x' }, () => undefined);
    junk.socket.emit('no-such-event', 1, 'two', { three: 3 }, new Uint8Array(16));
    junk.socket.emit('__proto__', { constructor: { prototype: { polluted: true } } });
    expect(coordinator.connectedClients).toBe(0);
    // After all that, the same connection can still register properly.
    const late = (await emitAndWait(junk, 'register', await signedRegistration(junk))) as Ack;
    expect(late).toMatchObject({ status: 'ok' });
    expect(coordinator.connectedClients).toBe(1);
    junk.close();

    const torn = await raw(url);
    const engine = torn.socket.io.engine as unknown as { write(message: string): void };
    const tornOutcome = new Promise<string>((resolve) => torn.socket.once('disconnect', resolve));
    engine.write('42["register",{"publicKey":');
    expect(await tornOutcome).toBeTruthy();

    // A message far above the size cap: that connection is closed, the coordinator is not.
    const huge = await raw(url);
    const hugeOutcome = (await emitAndWait(huge, 'register', new Uint8Array(8 * 1024 * 1024))) as {
      disconnected?: string;
    };
    expect(hugeOutcome.disconnected).toBeDefined();

    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await waitUntil(() => coordinator.connectedClients === 0);

    // The coordinator still runs a round for proper clients, and only they are recorded.
    const { history, honestIds } = await runWithHonestClients(coordinator);
    expect(history.rounds).toHaveLength(1);
    expect(history.rounds[0]).toMatchObject({
      status: 'completed',
      participants: HONEST,
      rejected: 0,
      dropped: 0,
    });
    const persisted = await readPersistedRounds(database, 'refusals');
    expect(persisted).toHaveLength(1);
    expect(persisted[0]!.participations.map((p) => p.clientId).sort()).toEqual(
      [...honestIds].sort(),
    );
  }, 120_000);

  test('one connection cannot stand for several clients, and leaves nothing registered when it closes', async () => {
    const coordinator = await startCoordinator(
      options(`file:${join(dir, 'sybil.db')}`, { experiment: 'sybil', rounds: 1, minClients: 5 }),
    );
    const sequential = await raw(coordinator.url);
    for (let i = 0; i < 3; i++)
      await emitAndWait(sequential, 'register', await signedRegistration(sequential));
    const concurrent = await raw(coordinator.url);
    const bodies = await Promise.all([1, 2, 3].map(() => signedRegistration(concurrent)));
    await Promise.all(bodies.map((body) => emitAndWait(concurrent, 'register', body)));
    // However the coordinator answers a second identity on a live connection, two
    // connections are at most two clients toward --min-clients and round selection...
    expect(coordinator.connectedClients).toBeLessThanOrEqual(2);
    sequential.close();
    concurrent.close();
    // ...and a closed connection leaves no ghost behind that rounds would select.
    await waitUntil(() => coordinator.connectedClients === 0, 3_000).catch(() => undefined);
    expect(coordinator.connectedClients).toBe(0);
  }, 60_000);
});

/** Polls a condition the coordinator reaches on its own (socket close handling). */
async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
