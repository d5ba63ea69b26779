import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator } from '../../coordinator/coordinator';
import { generateIdentity } from '../../shared/identity';
import { connectRawSocket } from '../helpers/raw-socket';
import type { RawSocket } from '../helpers/raw-socket';
import { connectScriptedClient } from '../helpers/scripted-client';

/**
 * A connection that never registers is closed after --register-timeout, so idle sockets
 * cannot pile up in the coordinator's memory; one that registered stays.
 */

let dir: string;
let coordinator: Coordinator | undefined;
const closers: Array<() => void> = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-unregistered-'));
  coordinator = await Coordinator.start(
    {
      host: '127.0.0.1',
      port: 0,
      rounds: 1,
      minClients: 50,
      evaluation: 'none',
      registerTimeoutMs: 600,
      database: `file:${join(dir, 'c.db')}`,
    },
    { identity: generateIdentity() },
  );
});
afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await coordinator?.stop();
  coordinator = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function disconnectReason(socket: RawSocket['socket'], withinMs: number) {
  return new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('still connected'), withinMs);
    socket.once('disconnect', (reason: string) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
}

test('a silent connection is closed by the coordinator after the register timeout; a registered one stays', async () => {
  const silent = await connectRawSocket(coordinator!.url);
  closers.push(() => silent.close());
  // Listening from the start: on a slow machine the 600 ms timeout can close the silent socket
  // while the other client is still registering.
  const silentEnd = disconnectReason(silent.socket, 10_000);
  const registered = await connectScriptedClient(coordinator!.url, {});
  closers.push(() => registered.close());
  expect(await registered.registered).toMatchObject({ status: 'ok' });

  const registeredEnd = await disconnectReason(registered.socket, 2_000);
  expect(await silentEnd).toBe('io server disconnect');
  expect(registeredEnd).toBe('still connected');
  expect(coordinator!.connectedClients).toBe(1);
});
