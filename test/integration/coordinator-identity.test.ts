import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectNodeClient } from '../../client-node/node-client';
import type { NodeClient, NodeClientOptions } from '../../client-node/node-client';
import { Coordinator } from '../../coordinator/coordinator';
import { fromHex, toHex, utf8Bytes } from '../../shared/bytes';
import type { Dataset } from '../../shared/data/dataset';
import { isCohortError } from '../../shared/errors';
import { clientIdFromPublicKey, generateIdentity, verifyDetached } from '../../shared/identity';
import { registrationAnswerMessage } from '../../shared/protocol/messages';
import { useWasmBackend } from '../helpers/backend';
import { slice } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { connectRawSocket } from '../helpers/raw-socket';
import type { RecordingOptions } from '../helpers/recording-coordinator';
import { RecordingCoordinator } from '../helpers/recording-coordinator';
import { connectScriptedClient } from '../helpers/scripted-client';
import { waitUntil } from '../helpers/wait-until';

/**
 * Registration binds the coordinator: its challenge carries its long-term public key and the
 * id derived from it, it signs each registration answer, and a client that pins the key
 * (`--coordinator-key`) refuses any other coordinator — including one that announces the
 * pinned key without holding it.
 */

let backend: string;
let data: { train: Dataset; test: Dataset };
let dir: string;
let coordinators: Coordinator[] = [];
let servers: RecordingCoordinator[] = [];
let clients: NodeClient[] = [];
let closers: Array<() => void> = [];

beforeAll(async () => {
  backend = await useWasmBackend();
  data = await smallMnist(64, 16);
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-coordinator-id-'));
});
afterEach(async () => {
  for (const client of clients) client.close();
  clients = [];
  for (const close of closers) close();
  closers = [];
  for (const c of coordinators) await c.stop();
  coordinators = [];
  for (const s of servers) await s.close();
  servers = [];
  rmSync(dir, { recursive: true, force: true });
});

async function startCoordinator(identity = generateIdentity()): Promise<Coordinator> {
  const coordinator = await Coordinator.start(
    {
      host: '127.0.0.1',
      port: 0,
      rounds: 1,
      minClients: 50, // never starts a round: these tests are about registration
      secureAggregation: true,
      evaluation: 'none',
      database: `file:${join(dir, `${coordinators.length}.db`)}`,
    },
    { identity },
  );
  coordinators.push(coordinator);
  return coordinator;
}

async function client(url: string, options: Partial<NodeClientOptions> = {}): Promise<NodeClient> {
  const node = await connectNodeClient({
    server: url,
    task: 'mnist',
    train: slice(data.train, 0, 64),
    test: data.test,
    identity: generateIdentity(),
    backend,
    reconnectDelayMs: 100,
    reconnectDelayMaxMs: 500,
    ...options,
  });
  clients.push(node);
  return node;
}

/** How the session ended: the rejection, or an Error saying it did not end that way. */
function rejection(node: NodeClient): Promise<unknown> {
  return node.session.finished.then(
    () => new Error('session finished normally'),
    (error: unknown) => error,
  );
}

describe("the coordinator's identity", () => {
  test('the challenge carries its key and the id derived from it; the answer is signed by that key', async () => {
    const identity = generateIdentity();
    const coordinator = await startCoordinator(identity);
    expect(coordinator.publicKeyHex).toBe(toHex(identity.publicKey));
    expect(coordinator.coordinatorId).toBe(clientIdFromPublicKey(identity.publicKey));

    const raw = await connectRawSocket(coordinator.url);
    closers.push(() => raw.close());
    const challenge = raw.challenge as unknown as Record<string, string>;
    expect(challenge.coordinatorKey).toBe(coordinator.publicKeyHex);
    expect(challenge.coordinatorId).toBe(coordinator.coordinatorId);

    // A scripted client registering with a nonce of its own gets a signed answer back.
    const clientNonce = 'cd'.repeat(32);
    let nonce = '';
    const scripted = await connectScriptedClient(
      coordinator.url,
      {},
      { registerOverride: { clientNonce } },
    );
    closers.push(() => scripted.close());
    scripted.socket.once('challenge', (c: { nonce: string }) => {
      nonce = c.nonce;
    });
    const answer = (await scripted.registered) as Record<string, unknown>;
    expect(answer).toMatchObject({ status: 'ok', secureAggregation: true });
    expect(nonce).not.toBe('');
    const message = registrationAnswerMessage({
      coordinatorId: coordinator.coordinatorId,
      nonce,
      clientNonce,
      clientPublicKey: toHex(scripted.identity.publicKey),
      clientId: answer.clientId as string,
      experiment: answer.experiment as string,
      secureAggregation: true,
    });
    expect(
      verifyDetached(
        utf8Bytes(message),
        fromHex(answer.coordinatorSignature as string),
        identity.publicKey,
      ),
    ).toBe(true);
    // The same signature does not vouch for a plain answer.
    expect(
      verifyDetached(
        utf8Bytes(message.replace('"secure"]', '"plain"]')),
        fromHex(answer.coordinatorSignature as string),
        identity.publicKey,
      ),
    ).toBe(false);

    // Without a nonce of the client's there is nothing fresh to sign.
    const legacy = await connectScriptedClient(coordinator.url, {});
    closers.push(() => legacy.close());
    const plainAnswer = (await legacy.registered) as Record<string, unknown>;
    expect(plainAnswer).toMatchObject({ status: 'ok' });
    expect(plainAnswer).not.toHaveProperty('coordinatorSignature');
  });

  test('a client pinned to the right key registers', async () => {
    const coordinator = await startCoordinator();
    const node = await client(coordinator.url, { coordinatorKey: coordinator.publicKeyHex });
    await waitUntil(() => node.session.id !== null);
    expect(coordinator.connectedClients).toBe(1);
  });

  test('the pin is case-insensitive', async () => {
    const coordinator = await startCoordinator();
    const node = await client(coordinator.url, {
      coordinatorKey: coordinator.publicKeyHex.toUpperCase(),
    });
    await waitUntil(() => node.session.id !== null);
  });

  test('a client pinned to another key refuses the coordinator with AUTH_FAILED, without registering', async () => {
    const coordinator = await startCoordinator();
    const joined: string[] = [];
    coordinator.on('client-joined', (c) => joined.push(c.clientId));
    const other = toHex(generateIdentity().publicKey);
    const node = await client(coordinator.url, { coordinatorKey: other });
    const error = await rejection(node);
    expect(isCohortError(error, 'AUTH_FAILED')).toBe(true);
    expect((error as Error).message).toMatch(/--coordinator-key/);
    expect(joined).toEqual([]);
    expect(coordinator.connectedClients).toBe(0);
  });

  test('an impersonator announcing the pinned key without holding it is refused (AUTH_FAILED)', async () => {
    const real = generateIdentity();
    const impostor = await RecordingCoordinator.start({
      // Announces the real coordinator's key, signs with its own.
      challenge: (honest) => ({
        ...honest,
        coordinatorKey: toHex(real.publicKey),
        coordinatorId: clientIdFromPublicKey(real.publicKey),
      }),
    });
    servers.push(impostor);
    const node = await client(impostor.url, { coordinatorKey: toHex(real.publicKey) });
    const error = await rejection(node);
    expect(isCohortError(error, 'AUTH_FAILED')).toBe(true);
    expect((error as Error).message).toMatch(/did not prove it holds key/);
  });

  test.each<[string, RecordingOptions['answer']]>([
    ['an unsigned answer', ({ coordinatorSignature: _dropped, ...rest }) => rest],
    [
      'an answer whose signature covers another mode',
      (honest) => ({ ...honest, secureAggregation: false }),
    ],
  ])('a pinned client refuses %s (AUTH_FAILED)', async (_name, answer) => {
    const server = await RecordingCoordinator.start({ answer });
    servers.push(server);
    const node = await client(server.url, {
      coordinatorKey: server.publicKeyHex,
      allowPlain: true,
    });
    const error = await rejection(node);
    expect(isCohortError(error, 'AUTH_FAILED')).toBe(true);
  });

  test('a challenge whose id does not derive from its key is ignored', async () => {
    const server = await RecordingCoordinator.start({
      challenge: (honest) => ({ ...honest, coordinatorId: 'ab'.repeat(16) }),
    });
    servers.push(server);
    const logs: string[] = [];
    const node = await client(server.url, { events: { onLog: (line) => logs.push(line) } });
    await waitUntil(() => logs.some((l) => /ignoring challenge/.test(l)));
    // It never registered, and the session is still waiting for a proper challenge.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.connections).toHaveLength(1);
    expect(server.connections[0]!.registrations).toEqual([]);
    expect(node.session.id).toBeNull();
    let settled = false;
    void node.session.finished.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
  });

  test('an unpinned client accepts a fresh coordinator key', async () => {
    const server = await RecordingCoordinator.start();
    servers.push(server);
    const logs: string[] = [];
    const node = await client(server.url, { events: { onLog: (line) => logs.push(line) } });
    await waitUntil(() => node.session.id !== null);
    // It says which key it registered with, so an operator can pin it next time.
    expect(logs.some((l) => l.includes(server.publicKeyHex))).toBe(true);
  });

  test('a client refuses a malformed pin at once', async () => {
    const coordinator = await startCoordinator();
    await expect(client(coordinator.url, { coordinatorKey: 'not-a-key' })).rejects.toThrow(
      /--coordinator-key/,
    );
  });
});
