import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectNodeClient } from '../../client-node/node-client';
import type { NodeClient } from '../../client-node/node-client';
import { Coordinator } from '../../coordinator/coordinator';
import type { Dataset } from '../../shared/data/dataset';
import { isCohortError } from '../../shared/errors';
import type { IdentityKeyPair } from '../../shared/identity';
import { clientIdFromPublicKey, generateIdentity } from '../../shared/identity';
import type { TaskName } from '../../shared/model/registry';
import { useWasmBackend } from '../helpers/backend';
import { slice } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import type { ScriptedClient } from '../helpers/scripted-client';
import { connectScriptedClient } from '../helpers/scripted-client';
import { waitUntil } from '../helpers/wait-until';

/**
 * Two connections of one identity. Evicting the first for the second is how two client
 * processes that share an identity file kick each other off forever (rounds never start):
 * so a live first connection keeps its place and the newcomer is refused with
 * IDENTITY_IN_USE, while a first connection that no longer answers (a client reconnecting
 * after a network cut the coordinator has not noticed yet) is replaced.
 */

let backend: string;
let data: { train: Dataset; test: Dataset };
let dir: string;
let coordinator: Coordinator | undefined;
let clients: NodeClient[] = [];
let scripted: ScriptedClient[] = [];

beforeAll(async () => {
  backend = await useWasmBackend();
  data = await smallMnist(64, 16);
});
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-identity-in-use-'));
  coordinator = await Coordinator.start(
    {
      host: '127.0.0.1',
      port: 0,
      rounds: 1,
      minClients: 50, // never starts a round: these tests are about registration
      evaluation: 'none',
      database: `file:${join(dir, 'c.db')}`,
    },
    { identity: generateIdentity() },
  );
});
afterEach(async () => {
  for (const c of clients) c.close();
  clients = [];
  for (const s of scripted) s.close();
  scripted = [];
  await coordinator?.stop();
  coordinator = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function nodeClient(
  identity: IdentityKeyPair,
  task: TaskName = 'mnist',
): Promise<NodeClient> {
  const node = await connectNodeClient({
    server: coordinator!.url,
    task,
    train: slice(data.train, 0, 64),
    test: data.test,
    identity,
    backend,
    reconnectDelayMs: 100,
    reconnectDelayMaxMs: 200,
  });
  clients.push(node);
  return node;
}

describe('one identity, two connections', () => {
  test('a live first connection keeps its place; the second is refused with IDENTITY_IN_USE', async () => {
    const identity = generateIdentity();
    const joined: string[] = [];
    coordinator!.on('client-joined', (c) => joined.push(c.clientId));
    const first = await nodeClient(identity);
    await waitUntil(() => first.session.id !== null);

    const second = await nodeClient(identity);
    const error = await second.session.finished.then(
      () => new Error('second session finished normally'),
      (e: unknown) => e,
    );
    expect(isCohortError(error, 'IDENTITY_IN_USE')).toBe(true);
    expect((error as Error).message).toMatch(/--identity/);
    // One code, the real one, however many hops the refusal made.
    expect((error as Error).message.match(/[A-Z]+_[A-Z_]+/g)).toEqual(['IDENTITY_IN_USE']);

    // No eviction and no reconnect loop: one registration, still the first, a while later.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(joined).toEqual([clientIdFromPublicKey(identity.publicKey)]);
    expect(coordinator!.connectedClients).toBe(1);
    expect(first.session.id).toBe(clientIdFromPublicKey(identity.publicKey));
  });

  test('a first connection that does not answer is replaced by the newcomer', async () => {
    const identity = generateIdentity();
    // Registered, but deaf to the presence probe: a connection already dead on the client side.
    const ghost = await connectScriptedClient(coordinator!.url, {}, { identity });
    scripted.push(ghost);
    expect(await ghost.registered).toMatchObject({ status: 'ok' });
    const ghostGone = new Promise<void>((resolve) =>
      ghost.socket.once('disconnect', () => resolve()),
    );

    const node = await nodeClient(identity);
    await waitUntil(() => node.session.id !== null);
    await ghostGone;
    expect(coordinator!.connectedClients).toBe(1);
    expect(node.session.id).toBe(clientIdFromPublicKey(identity.publicKey));
  });
});

describe('a refused registration', () => {
  test('carries one code, the real one (TASK_MISMATCH, not AUTH_FAILED: TASK_MISMATCH: TASK_MISMATCH)', async () => {
    const node = await nodeClient(generateIdentity(), 'cifar10');
    const error = await node.session.finished.then(
      () => new Error('session finished normally'),
      (e: unknown) => e,
    );
    expect(isCohortError(error, 'TASK_MISMATCH')).toBe(true);
    expect((error as Error).message.match(/[A-Z]+_[A-Z_]+/g)).toEqual(['TASK_MISMATCH']);
    expect((error as Error).message).toMatch(/coordinator runs task "mnist"/);
  });
});
