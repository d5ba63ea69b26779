import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import { Coordinator } from '../../coordinator/coordinator';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import { SECURITY_HEADERS } from '../../coordinator/web/security-headers';
import type { NodeClient } from '../../client-node/node-client';
import { datasetFromIdx, parseIdx } from '../../shared/data/idx';
import { generateIdentity } from '../../shared/identity';
import { SECAGG_PHASES } from '../../shared/secagg';
import type { DashboardSnapshot, JoinInfo, WebError } from '../../shared/protocol/web';
import { DASHBOARD_NAMESPACE, WEB_PATHS } from '../../shared/protocol/web';
import { useWasmBackend } from '../helpers/backend';
import { closeAll, startClients } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRounds } from '../helpers/persisted-rounds';
import { ScriptedFederation } from '../helpers/scripted-federation';
import { waitUntil } from '../helpers/wait-until';

/**
 * The coordinator's HTTP side over a real socket: every answer carries the security headers;
 * reads need the dashboard token when one is set, controls always need the admin token;
 * refusals are WebError bodies with stable codes; public sample shards are IDX files that
 * decode to the data they came from; the metrics and the live dashboard feed follow a real
 * secure federation, and pause / resume / stop steer it.
 */

const ADMIN = 'admin-token-for-tests-0123456789';
const VIEWER = 'dashboard-token-for-tests-98765';
const federation = new ScriptedFederation('web');
const sockets: Socket[] = [];
let clients: NodeClient[] = [];
let backend = '';

beforeAll(async () => {
  backend = await useWasmBackend();
});
afterEach(() => {
  for (const s of sockets.splice(0)) s.disconnect();
  closeAll(clients);
  clients = [];
});

async function start(extra: Partial<CoordinatorConfigInput> = {}, withSample = false) {
  const sample = withSample ? (await smallMnist(300, 10)).train : null;
  return federation.track(
    await Coordinator.start(
      {
        ...federation.config('web', { minClients: 3, rounds: 1 }),
        adminToken: ADMIN,
        dashboardToken: VIEWER,
        sampleShards: 2,
        sampleShardSize: 100,
        ...extra,
      },
      {
        identity: generateIdentity(),
        browserAssetsDir: null,
        sampleData: sample ? { data: sample, description: 'test MNIST (public)' } : null,
      },
    ),
  );
}

async function call(
  coordinator: Coordinator,
  path: string,
  init: { token?: string; method?: string; body?: string } = {},
) {
  const response = await fetch(`${coordinator.url}${path}`, {
    method: init.method ?? 'GET',
    headers: init.token !== undefined ? { Authorization: `Bearer ${init.token}` } : {},
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  return response;
}

async function refusal(response: Response): Promise<[number, string]> {
  const body = (await response.json()) as WebError;
  return [response.status, body.error.code];
}

test('pages, API and assets: headers, tokens, stable refusals, sample shards', async () => {
  const coordinator = await start({}, true);

  const info = await call(coordinator, WEB_PATHS.joinInfo);
  expect(info.status).toBe(200);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    expect(info.headers.get(name)).toBe(value);
  }
  const joinInfo = (await info.json()) as JoinInfo;
  expect(joinInfo).toEqual({
    experiment: 'web',
    task: 'mnist',
    secureAggregation: false,
    coordinatorKey: coordinator.publicKeyHex,
    joinTokenRequired: false,
    sample: { shards: 2, examplesPerShard: 100, description: 'test MNIST (public)' },
  });

  // Pages not built (no dist/browser given): a clear 503, not a crash or an empty page.
  const page = await call(coordinator, WEB_PATHS.join);
  expect(page.status).toBe(503);
  expect(await page.text()).toMatch(/npm run build/);

  // Reads need the dashboard token; a wrong one is refused the same way as none.
  expect(await refusal(await call(coordinator, WEB_PATHS.state))).toEqual([401, 'ACCESS_REFUSED']);
  expect(await refusal(await call(coordinator, WEB_PATHS.state, { token: ADMIN }))).toEqual([
    401,
    'ACCESS_REFUSED',
  ]);
  expect(await refusal(await call(coordinator, WEB_PATHS.metrics))).toEqual([
    401,
    'ACCESS_REFUSED',
  ]);
  const state = (await (
    await call(coordinator, WEB_PATHS.state, { token: VIEWER })
  ).json()) as DashboardSnapshot;
  expect(state).toMatchObject({
    experiment: 'web',
    status: 'waiting',
    history: [],
    controls: true,
  });
  // No secret and no file system path in the public config.
  expect(JSON.stringify(state)).not.toContain(ADMIN);
  expect(JSON.stringify(state)).not.toContain(VIEWER);
  expect(Object.keys(state.config)).not.toContain('database');

  // Controls need the admin token: the dashboard token is not enough.
  for (const token of [undefined, VIEWER, ADMIN.slice(0, -1) + 'x']) {
    const r = await call(coordinator, `${WEB_PATHS.control}pause`, {
      method: 'POST',
      ...(token !== undefined ? { token } : {}),
    });
    expect(await refusal(r)).toEqual([401, 'ACCESS_REFUSED']);
  }
  expect(coordinator.status).toBe('waiting');
  expect(
    await refusal(await call(coordinator, `${WEB_PATHS.control}pause`, { token: ADMIN })),
  ).toEqual([400, 'MESSAGE_INVALID']); // GET is not a control
  expect(
    await refusal(
      await call(coordinator, `${WEB_PATHS.control}explode`, { method: 'POST', token: ADMIN }),
    ),
  ).toEqual([404, 'NOT_FOUND']);

  // Public sample shards decode to exactly the examples they were cut from.
  const images = new Uint8Array(
    await (await call(coordinator, `${WEB_PATHS.sample}1/images`)).arrayBuffer(),
  );
  const labels = new Uint8Array(
    await (await call(coordinator, `${WEB_PATHS.sample}1/labels`)).arrayBuffer(),
  );
  const shard = datasetFromIdx(parseIdx(images), parseIdx(labels), 10);
  expect(shard.count).toBe(100);
  expect(shard.shape).toEqual([28, 28, 1]);
  const source = (await smallMnist(300, 10)).train;
  const pixels = 28 * 28;
  const first = Array.from(shard.images.subarray(0, pixels));
  const origin = [...Array(source.count).keys()].find((i) =>
    source.images
      .subarray(i * pixels, (i + 1) * pixels)
      .every((v, j) => Math.abs(v - first[j]!) < 1e-6),
  );
  expect(origin).toBeDefined();
  expect(shard.labels[0]).toBe(source.labels[origin!]);
  expect(await refusal(await call(coordinator, `${WEB_PATHS.sample}2/images`))).toEqual([
    404,
    'NOT_FOUND',
  ]);

  const qr = await call(coordinator, WEB_PATHS.joinQr);
  expect(qr.headers.get('content-type')).toBe('image/svg+xml');
  expect(await qr.text()).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);

  // Unknown paths, escapes and bodies: refused with codes, the server carries on.
  expect(await refusal(await call(coordinator, '/nope'))).toEqual([404, 'NOT_FOUND']);
  expect(await refusal(await call(coordinator, '/assets/..%2Fpackage.json'))).toEqual([
    404,
    'NOT_FOUND',
  ]);
  expect(
    await refusal(
      await call(coordinator, WEB_PATHS.joinInfo, { method: 'POST', body: 'x'.repeat(5000) }),
    ),
  ).toEqual([400, 'MESSAGE_INVALID']);
  expect((await call(coordinator, WEB_PATHS.joinInfo)).status).toBe(200);
}, 60_000);

test('without an admin token controls are off, and say how to turn them on', async () => {
  const coordinator = await start({ adminToken: undefined, dashboardToken: undefined });
  const state = (await (await call(coordinator, WEB_PATHS.state)).json()) as DashboardSnapshot;
  expect(state.controls).toBe(false);
  const r = await call(coordinator, `${WEB_PATHS.control}stop`, { method: 'POST', token: ADMIN });
  const body = (await r.json()) as WebError;
  expect(r.status).toBe(401);
  expect(body.error).toEqual({
    code: 'ACCESS_REFUSED',
    message: 'controls are off: start the coordinator with --admin-token-file',
  });
  expect(coordinator.status).toBe('waiting');
});

/** The value of one sample line of the Prometheus text format (`name{labels} value`). */
function metric(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(sample + ' '));
  return line ? Number(line.slice(sample.length + 1)) : NaN;
}

test('a secure federation steered from the API: live snapshots, metrics, pause and resume', async () => {
  const coordinator = await start({
    rounds: 3,
    secureAggregation: true,
    minClients: 3,
    epochs: 1,
    batchSize: 16,
  });
  const ended: number[] = [];
  const started: number[] = [];
  coordinator.on('round-start', ({ round }) => started.push(round));
  // Pause asked while round 1 trains: round 1 finishes, round 2 waits for resume.
  let pauseAnswer: Promise<Response> | null = null;
  coordinator.once('round-phase', () => {
    pauseAnswer = call(coordinator, `${WEB_PATHS.control}pause`, { method: 'POST', token: ADMIN });
  });
  coordinator.on('round-end', (entry) => ended.push(entry.round));

  // The live feed, with and without the dashboard token.
  const refused = io(`${coordinator.url}${DASHBOARD_NAMESPACE}`, {
    transports: ['websocket'],
    reconnection: false,
  });
  sockets.push(refused);
  const refusedWith = new Promise<string>((resolve) =>
    refused.on('connect_error', (e) => resolve(e.message)),
  );
  const viewer = io(`${coordinator.url}${DASHBOARD_NAMESPACE}`, {
    transports: ['websocket'],
    reconnection: false,
    auth: { token: VIEWER },
  });
  sockets.push(viewer);
  const snapshots: DashboardSnapshot[] = [];
  viewer.on('snapshot', (s: DashboardSnapshot) => snapshots.push(s));
  expect(await refusedWith).toBe(
    'ACCESS_REFUSED: the dashboard needs its token (--dashboard-token)',
  );

  const data = await smallMnist(180, 60);
  clients = await startClients(coordinator.url, 3, data, 60, backend, () => ({
    minParticipants: 3,
  }));

  await waitUntil(() => coordinator.status === 'paused', 120_000);
  expect(pauseAnswer).not.toBeNull();
  expect((await pauseAnswer!).status).toBe(200);
  expect(ended).toEqual([1]);
  // Paused: clients are there, but no round starts and the database holds round 1 only.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(started).toEqual([1]);
  expect((await readPersistedRounds(federation.database('run.db'), 'web')).length).toBe(1);
  await waitUntil(() => snapshots.some((s) => s.status === 'paused'));

  // While paused, the live clients are listed with the rounds they took part in.
  const paused = (await (
    await call(coordinator, WEB_PATHS.state, { token: VIEWER })
  ).json()) as DashboardSnapshot;
  expect(paused.clients.map((c) => [c.platform, c.backend, c.rounds])).toEqual([
    ['node', backend, 1],
    ['node', backend, 1],
    ['node', backend, 1],
  ]);
  const live = await (await call(coordinator, WEB_PATHS.metrics, { token: VIEWER })).text();
  expect(metric(live, 'cohort_connected_clients{platform="node"}')).toBe(3);
  expect(metric(live, 'cohort_connected_clients{platform="browser"}')).toBe(0);
  expect(metric(live, 'cohort_rounds_total{status="completed"}')).toBe(1);

  const resumed = await call(coordinator, `${WEB_PATHS.control}resume`, {
    method: 'POST',
    token: ADMIN,
  });
  expect(await resumed.json()).toMatchObject({ action: 'resume', message: 'resumed' });
  const history = await coordinator.done;
  expect(history.rounds.map((r) => [r.round, r.status])).toEqual([
    [1, 'completed'],
    [2, 'completed'],
    [3, 'completed'],
  ]);
  expect(coordinator.status).toBe('finished');

  // The snapshot is the database's history, and names each live client's rounds.
  const state = (await (
    await call(coordinator, WEB_PATHS.state, { token: VIEWER })
  ).json()) as DashboardSnapshot;
  expect(state.status).toBe('finished');
  expect(
    state.history.map((r) => [r.round, r.status, r.participants, r.secureAggregation]),
  ).toEqual([
    [1, 'completed', 3, true],
    [2, 'completed', 3, true],
    [3, 'completed', 3, true],
  ]);
  expect(state.history.map((r) => r.testAccuracy)).toEqual(
    history.rounds.map((r) => r.testAccuracy),
  );
  await waitUntil(() => snapshots.at(-1)?.history.length === 3);
  // Snapshots stream while the run goes, one phase at a time.
  const phases = new Set(snapshots.map((s) => s.current?.phase).filter(Boolean));
  expect(phases.has('training')).toBe(true);

  // A viewer that speaks is hung up on: the namespace is read-only.
  const closed = new Promise<string>((resolve) => viewer.once('disconnect', resolve));
  viewer.emit('control', 'stop');
  expect(await closed).toBe('io server disconnect');
  expect(coordinator.status).toBe('finished');

  const metrics = await (await call(coordinator, WEB_PATHS.metrics, { token: VIEWER })).text();
  expect(metric(metrics, 'cohort_rounds_total{status="completed"}')).toBe(3);
  expect(metric(metrics, 'cohort_round_duration_seconds_count')).toBe(3);
  expect(metric(metrics, 'cohort_phase_duration_seconds_count{phase="training"}')).toBe(3);
  for (const phase of SECAGG_PHASES) {
    expect(metric(metrics, `cohort_phase_duration_seconds_count{phase="${phase}"}`)).toBe(3);
  }
  expect(metric(metrics, 'cohort_connected_clients{platform="node"}')).toBe(0); // they left
  expect(metric(metrics, 'cohort_dropouts_total')).toBe(0);
  const received = metric(metrics, 'cohort_bytes_received_total');
  expect(received).toBeGreaterThanOrEqual(history.rounds.reduce((s, r) => s + r.bytesReceived, 0));
  expect(metric(metrics, 'cohort_bytes_sent_total')).toBeGreaterThan(0);

  // A restarted coordinator's dashboard shows the whole history: it comes from the database.
  await coordinator.stop();
  const again = await start({
    rounds: 3,
    secureAggregation: true,
    publicUrl: 'https://fl.example.org/',
  });
  await again.done;
  const reloaded = (await (
    await call(again, WEB_PATHS.state, { token: VIEWER })
  ).json()) as DashboardSnapshot;
  expect(reloaded.history).toEqual(state.history);
  expect(reloaded.joinUrl).toBe('https://fl.example.org/join');
}, 240_000);

test('stop from the API ends the run cleanly; what was completed stays', async () => {
  const coordinator = await start();
  const r = await call(coordinator, `${WEB_PATHS.control}stop`, { method: 'POST', token: ADMIN });
  expect(await r.json()).toMatchObject({ action: 'stop', status: 'stopped' });
  await expect(coordinator.done).rejects.toThrow(/stopped/);
  expect(coordinator.status).toBe('stopped');
  // Stopped means stopped: the server no longer answers.
  await expect(call(coordinator, WEB_PATHS.joinInfo)).rejects.toThrow();
});
