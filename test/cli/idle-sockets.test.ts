import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Manager } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import {
  assertCliBuilt,
  CliProcess,
  coordinatorArgs,
  killAllCliProcesses,
} from '../helpers/cli-process';
import { connectScriptedClient } from '../helpers/scripted-client';
import type { ScriptedClient } from '../helpers/scripted-client';

/**
 * An attacker opens thousands of idle connections to a coordinator process, from what looks
 * like many addresses (the per-address limit is lifted, so only the global bound holds):
 * half only open the transport, half also join the namespace and never register. The
 * coordinator holds at most --max-unregistered of them at any moment, closes the rest at
 * once and the admitted ones at the register timeout, its memory stays bounded, and a real
 * client still registers afterwards.
 */

const STARTUP_TIMEOUT_MS = 120_000;
const MAX_UNREGISTERED = 64;
const ATTACKERS = 2000;
/** Resident-memory growth allowed for the flood (each admitted connection costs ~100 KiB). */
const MAX_RSS_GROWTH_BYTES = 96 * 1024 * 1024;

let dir: string;
const closers: Array<() => void> = [];

beforeAll(() => assertCliBuilt());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-idle-'));
});
afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await killAllCliProcesses();
  rmSync(dir, { recursive: true, force: true });
});

/** One sample of the coordinator's /metrics: a gauge or counter value by name. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

/** A transport connection that never joins the namespace (engine.io only). */
function openTransportOnly(url: string): () => void {
  const manager = new Manager(url, {
    transports: ['websocket'],
    reconnection: false,
    autoConnect: true,
  });
  return () => manager.engine?.close();
}

/** A connection that joins the namespace, receives its challenge and never registers. */
function openSilentSocket(url: string, challenged: { count: number }): Socket {
  const manager = new Manager(url, { transports: ['websocket'], reconnection: false });
  const socket = manager.socket('/');
  socket.once('challenge', () => challenged.count++);
  socket.connect();
  return socket;
}

test('thousands of idle connections: at most --max-unregistered are held, memory stays bounded, real clients still join', async () => {
  const { args } = coordinatorArgs(dir, {
    '--rounds': 1,
    '--min-clients': 3,
    '--evaluation': 'none',
    '--max-unregistered': MAX_UNREGISTERED,
    // Only the global bound holds, as against an attacker with many addresses.
    '--max-connections-per-address': 100_000,
    '--register-timeout': 3,
  });
  const coordinator = new CliProcess(args);
  const [, url] = await coordinator.waitForOutput(
    /listening on (http:\/\/127\.0\.0\.1:\d+)/,
    STARTUP_TIMEOUT_MS,
  );
  const base = url!;
  const rssBefore = await metric(base, 'process_resident_memory_bytes');

  const challenged = { count: 0 };
  let peakUnregistered = 0;
  const sample = setInterval(() => {
    void metric(base, 'cohort_unregistered_connections').then(
      (v) => (peakUnregistered = Math.max(peakUnregistered, v)),
      () => undefined,
    );
  }, 50);
  closers.push(() => clearInterval(sample));
  for (let i = 0; i < ATTACKERS; i++) {
    if (i % 2 === 0) closers.push(openTransportOnly(base));
    else {
      const socket = openSilentSocket(base, challenged);
      closers.push(() => socket.disconnect());
    }
    // In bursts, so the flood is concurrent rather than one connection at a time.
    if (i % 200 === 199) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const duringFlood = await metric(base, 'cohort_unregistered_connections');
  const rssDuring = await metric(base, 'process_resident_memory_bytes');
  clearInterval(sample);

  expect(duringFlood).toBeLessThanOrEqual(MAX_UNREGISTERED);
  expect(peakUnregistered).toBeLessThanOrEqual(MAX_UNREGISTERED);
  // Silent sockets admitted got a challenge; all the others were closed unserved.
  expect(challenged.count).toBeLessThanOrEqual(MAX_UNREGISTERED);
  expect(rssDuring - rssBefore).toBeLessThan(MAX_RSS_GROWTH_BYTES);
  // The admitted ones are closed at the register timeout: nothing is held afterwards.
  const deadline = Date.now() + 15_000;
  while ((await metric(base, 'cohort_unregistered_connections')) !== 0) {
    if (Date.now() > deadline) throw new Error('idle connections still held after 15 s');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  // The attackers are gone; a real client registers as usual.
  for (const close of closers.splice(0)) close();
  const client: ScriptedClient = await connectScriptedClient(base, {});
  closers.push(() => client.close());
  expect(await client.registered).toMatchObject({ status: 'ok' });
  expect(coordinator.hasExited).toBe(false);
}, 300_000);
