import { connectNodeClient } from '../../client-node/node-client';
import { Coordinator } from '../../coordinator/coordinator';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import { generateIdentity } from '../../shared/identity';
import { useWasmBackend } from '../helpers/backend';
import { smallMnist } from '../helpers/mnist-fixture';
import { connectRawSocket, emitAndWait } from '../helpers/raw-socket';
import type { RawSocket } from '../helpers/raw-socket';
import { connectScriptedClient } from '../helpers/scripted-client';
import { ScriptedFederation } from '../helpers/scripted-federation';
import { waitUntil } from '../helpers/wait-until';

/**
 * The per-peer limits over real sockets: connections beyond the per-address limit are
 * refused at the handshake (and admitted again once others leave), a connection that floods
 * events is closed, unknown events are answered MESSAGE_INVALID, an oversized registration
 * closes its connection; and through all of it the coordinator keeps serving honest clients.
 */

const federation = new ScriptedFederation('limits');
const raws: RawSocket[] = [];
afterEach(() => {
  for (const raw of raws.splice(0)) raw.close();
});

async function start(extra: Partial<CoordinatorConfigInput>): Promise<Coordinator> {
  return federation.track(
    await Coordinator.start(
      {
        host: '127.0.0.1',
        port: 0,
        rounds: 1,
        minClients: 50,
        evaluation: 'none',
        database: federation.database('run.db'),
        ...extra,
      },
      { identity: generateIdentity() },
    ),
  );
}

async function refusal(url: string): Promise<string> {
  try {
    raws.push(await connectRawSocket(url));
    return 'connected';
  } catch (error) {
    return (error as Error).message;
  }
}

test('beyond --max-connections-per-address a connection is refused RATE_LIMITED, until one leaves', async () => {
  const coordinator = await start({ maxConnectionsPerAddress: 5 });
  for (let i = 0; i < 5; i++) expect(await refusal(coordinator.url)).toBe('connected');
  // Many more attempts: every one refused at the handshake, none holds a socket.
  for (let i = 0; i < 20; i++) {
    expect(await refusal(coordinator.url)).toBe(
      'RATE_LIMITED: 5 connections from this address already (--max-connections-per-address)',
    );
  }
  raws.shift()!.close();
  // The server notices the close a moment later; then there is room for one more, only one.
  let outcome = '';
  for (let attempt = 0; attempt < 50 && outcome !== 'connected'; attempt++) {
    outcome = await refusal(coordinator.url);
    if (outcome !== 'connected') await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(outcome).toBe('connected');
  expect(await refusal(coordinator.url)).toMatch(/^RATE_LIMITED: /);
  expect(raws).toHaveLength(5);
}, 60_000);

test('a flood of events closes that connection; other clients are untouched', async () => {
  const coordinator = await start({ maxEventsPerSecond: 20 });
  const honest = federation.trackClient(await connectScriptedClient(coordinator.url, {}));
  const flooder = federation.trackClient(await connectScriptedClient(coordinator.url, {}));
  expect(await honest.registered).toMatchObject({ status: 'ok' });
  expect(await flooder.registered).toMatchObject({ status: 'ok' });
  const closed = new Promise<string>((resolve) => flooder.socket.once('disconnect', resolve));
  for (let i = 0; i < 200; i++) flooder.socket.emit('progress', { roundId: 'r', fraction: 0.5 });
  expect(await closed).toBe('io server disconnect');
  await waitUntil(() => coordinator.connectedClients === 1);
  expect(honest.socket.connected).toBe(true);
}, 60_000);

test('unknown events get MESSAGE_INVALID; an oversized registration closes the connection', async () => {
  const coordinator = await start({ maxEventBytes: 4096 });
  const raw = await connectRawSocket(coordinator.url);
  raws.push(raw);
  expect(await emitAndWait(raw, 'admin:shutdown', { now: true })).toEqual({
    status: 'error',
    code: 'MESSAGE_INVALID',
    message: 'unknown event "admin:shutdown"',
  });
  expect(raw.socket.connected).toBe(true);
  expect(await emitAndWait(raw, 'register', { displayName: 'x'.repeat(10_000) })).toEqual({
    status: 'error',
    code: 'MESSAGE_INVALID',
    message: 'register is larger than 4096 bytes',
  });
  await waitUntil(() => !raw.socket.connected);
  // The coordinator still registers a well-behaved client.
  const client = federation.trackClient(await connectScriptedClient(coordinator.url, {}));
  expect(await client.registered).toMatchObject({ status: 'ok' });
}, 60_000);

test('a client refused RATE_LIMITED at the handshake tries again by itself and gets in once there is room', async () => {
  const [backend, data] = await Promise.all([useWasmBackend(), smallMnist(20, 10)]);
  const coordinator = await start({ maxConnectionsPerAddress: 1 });
  const holder = await connectRawSocket(coordinator.url);
  raws.push(holder);
  const client = await connectNodeClient({
    server: coordinator.url,
    task: 'mnist',
    train: data.train,
    test: data.test,
    identity: generateIdentity(),
    backend,
    allowPlain: true,
    reconnectDelayMs: 50,
    reconnectDelayMaxMs: 200,
  });
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(coordinator.connectedClients).toBe(0);
    holder.close();
    await waitUntil(() => coordinator.connectedClients === 1);
  } finally {
    client.close();
  }
}, 60_000);
