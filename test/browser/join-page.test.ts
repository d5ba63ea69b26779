import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import type { BrowserContext } from 'playwright-core';
import { Coordinator } from '../../coordinator/coordinator';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import type { RoundHistoryEntry } from '../../coordinator/history';
import { findBrowserAssets } from '../../coordinator/web/browser-assets';
import type { NodeClient } from '../../client-node/node-client';
import { generateIdentity } from '../../shared/identity';
import { getModelSpec } from '../../shared/model/registry';
import { summarizeModelSpec } from '../../shared/model/validate-spec';
import { useWasmBackend } from '../helpers/backend';
import { describeWithChromium } from '../helpers/browser-page';
import type { RecordedTab } from '../helpers/browser-tabs';
import { BrowserTabs, readGlobal, saveScreenshot, waitForGlobal } from '../helpers/browser-tabs';
import { closeAll, slice, startClients } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRounds } from '../helpers/persisted-rounds';
import { ScriptedFederation } from '../helpers/scripted-federation';

/**
 * The browser client for real: the coordinator serves the built join page and dashboard,
 * headless Chromium opens them, and the tab trains and takes part in secure rounds beside
 * real Node clients. What the tab sends is recorded byte for byte.
 */

interface JoinHook {
  state: string;
  backend: string | null;
  clientId: string | null;
  phase: string | null;
  roundsCompleted: number;
  summaries: { round: number; status: string; testAccuracy: number | null }[];
  bytesSentByRound: Record<string, number>;
  error: { code: string; message: string } | null;
  dataSource: string | null;
  trainExamples: number;
  joins: number;
}

interface DashboardHook {
  snapshots: number;
  chartPoints: { round: number; accuracy: number | null }[];
  live: boolean;
  lastControl: { action: string; ok: boolean; code: string | null } | null;
  last: { history: { round: number; status: string }[] } | null;
}

const ADMIN = 'browser-admin-token-0123456789abc';
const federation = new ScriptedFederation('browser');
let backend = '';
let clients: NodeClient[] = [];
const profiles: BrowserContext[] = [];

beforeAll(async () => {
  if (findBrowserAssets() === null) {
    throw new Error('dist/browser is missing: run `npm run build` before the browser tests');
  }
  backend = await useWasmBackend();
}, 60_000);
afterEach(async () => {
  for (const p of profiles.splice(0)) await p.close();
  closeAll(clients);
  clients = [];
});

/** A secure coordinator offering 4 public sample shards of 300 MNIST examples. */
async function startCoordinator(extra: Partial<CoordinatorConfigInput>): Promise<Coordinator> {
  const data = await smallMnist(1200, 300);
  return federation.track(
    await Coordinator.start(
      {
        ...federation.config('browser', { evaluation: 'centralized', secureAggregation: true }),
        epochs: 2,
        batchSize: 16,
        adminToken: ADMIN,
        sampleShards: 4,
        sampleShardSize: 300,
        ...extra,
      },
      {
        identity: generateIdentity(),
        testSet: data.test,
        sampleData: { data: data.train, description: 'MNIST sample (public)' },
      },
    ),
  );
}

/** Node clients on examples the sample shards (the first 1200) do not cover. */
async function nodeClients(url: string, count: number): Promise<NodeClient[]> {
  const data = await smallMnist(1200 + 300 * count, 100);
  const rest = { train: slice(data.train, 1200, data.train.count), test: data.test };
  return startClients(url, count, rest, 300, backend, () => ({ minParticipants: 3 }));
}

describeWithChromium('browser tabs as Cohort clients', (chromium) => {
  let tabs: BrowserTabs;
  beforeAll(async () => {
    tabs = await BrowserTabs.launch(chromium);
  }, 60_000);
  afterAll(async () => {
    await tabs?.close();
  });

  async function profile(): Promise<BrowserContext> {
    const p = await tabs.newProfile();
    profiles.push(p);
    return p;
  }

  test('2 Node clients and 1 tab (?sample=1) run secure rounds; the dashboard follows live', async () => {
    const coordinator = await startCoordinator({ rounds: 3, minClients: 3 });
    const dashboard = await tabs.open(await profile(), `${coordinator.url}/`);
    const tab = await tabs.open(
      await profile(),
      `${coordinator.url}/join?sample=1&shard=0&min-participants=3&backend=wasm&name=tab-1`,
    );
    clients = await nodeClients(coordinator.url, 2);
    // The chart grows while the run goes, without a reload.
    const early = await waitForGlobal<DashboardHook>(
      dashboard.page,
      'cohortDashboard',
      (d) => d.chartPoints.length >= 1,
    );
    const history = await coordinator.done;
    expect(early.chartPoints.length).toBeLessThan(3);

    expect(history.rounds.map((r) => [r.round, r.status, r.participants, r.dropped])).toEqual([
      [1, 'completed', 3, 0],
      [2, 'completed', 3, 0],
      [3, 'completed', 3, 0],
    ]);
    // Accuracy rises: from round 1 to round 3, to well above chance (10%).
    const accuracies = history.rounds.map((r) => r.testAccuracy!);
    expect(accuracies[2]).toBeGreaterThan(accuracies[0]! + 0.05);
    expect(accuracies[2]).toBeGreaterThan(0.5);

    const join = await waitForGlobal<JoinHook>(tab.page, 'cohortJoin', (s) => s.state === 'done');
    expect(join).toMatchObject({
      backend: 'wasm',
      dataSource: 'sample',
      trainExamples: 270,
      error: null,
    });
    expect(join.summaries.map((s) => [s.round, s.status])).toEqual([
      [1, 'completed'],
      [2, 'completed'],
      [3, 'completed'],
    ]);
    // The database names the tab as a browser participant of both rounds.
    const rounds = await readPersistedRounds(federation.database('run.db'), 'browser');
    for (const round of rounds) {
      const browserParts = round.participations.filter((p) => p.platform === 'browser');
      expect(browserParts.map((p) => [p.clientId, p.displayName, p.status])).toEqual([
        [join.clientId, 'tab-1', 'completed'],
      ]);
    }

    // The dashboard drew both rounds, live, and refuses a control without the admin token.
    const dash = await waitForGlobal<DashboardHook>(
      dashboard.page,
      'cohortDashboard',
      (d) => d.chartPoints.length === 3,
    );
    expect(dash.snapshots).toBeGreaterThan(2);
    expect(dash.chartPoints.map((p) => [p.round, p.accuracy])).toEqual(
      history.rounds.map((r) => [r.round, r.testAccuracy]),
    );
    expect(await dashboard.page.locator('[data-testid="round-row"]').count()).toBe(3);
    await saveScreenshot(dashboard.page, 'dashboard');
    await saveScreenshot(tab.page, 'join-page');
    await dashboard.page.locator('[data-testid="control-pause"]').click();
    const refused = await waitForGlobal<DashboardHook>(
      dashboard.page,
      'cohortDashboard',
      (d) => d.lastControl !== null,
    );
    expect(refused.lastControl).toMatchObject({
      action: 'pause',
      ok: false,
      code: 'ACCESS_REFUSED',
    });
    expect(tab.errors).toEqual([]);
  }, 300_000);

  test('a tab training on a picked folder of PNGs sends no image data, one masked update a round', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-pngs-'));
    try {
      const files = writeNoisePngs(dir, 10, 4);
      const coordinator = await startCoordinator({ rounds: 2, minClients: 3 });
      const tab = await tabs.open(
        await profile(),
        `${coordinator.url}/join?min-participants=3&backend=wasm`,
      );
      await tab.page.locator('[data-testid="folder-input"]').setInputFiles(dir);
      clients = await nodeClients(coordinator.url, 2);
      const history = await coordinator.done;
      expect(history.rounds.map((r) => [r.status, r.participants])).toEqual([
        ['completed', 3],
        ['completed', 3],
      ]);
      const join = await waitForGlobal<JoinHook>(tab.page, 'cohortJoin', (s) => s.state === 'done');
      expect(join.dataSource).toBe('folder');
      const { testExamples } = await readGlobal<{ testExamples: number }>(tab.page, 'cohortJoin');
      expect(join.trainExamples + testExamples).toBe(40);

      // No request body and no WebSocket frame holds any image: not the PNG bytes, not the
      // decoded pixels (bytes, or the float32 values the tab trains on).
      const sent = [
        ...tab.sent.requests.map((r) => r.body).filter((b): b is Buffer => b !== null),
        ...tab.sent.frames.map((f) => f.payload),
      ];
      for (const file of files) {
        for (const needle of imageNeedles(file)) {
          for (const payload of sent) expect(payload.includes(needle)).toBe(false);
        }
      }
      // About one masked update per round: frames near the model's size, one per round.
      const modelBytes = summarizeModelSpec(getModelSpec('mnist')).parameters * 4;
      const large = tab.sent.frames.filter((f) => f.payload.length > modelBytes / 2);
      expect(large).toHaveLength(2);
      for (const frame of large) expect(frame.payload.length).toBeLessThan(modelBytes * 1.3);
      const sentTotal = sent.reduce((s, b) => s + b.length, 0);
      expect(sentTotal).toBeLessThan(2 * modelBytes * 1.3 + 200_000);
      expect(tab.errors).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  test('a tab closed mid-round: the round completes with the survivors; reopened, it rejoins', async () => {
    // Four per round: the tab's return is what lets round 2 start.
    const coordinator = await startCoordinator({ rounds: 2, minClients: 4 });
    const context = await profile();
    let tab: RecordedTab = await tabs.open(
      context,
      `${coordinator.url}/join?sample=1&shard=1&min-participants=3&backend=wasm`,
    );
    const joined = await waitForGlobal<JoinHook>(
      tab.page,
      'cohortJoin',
      (s) => s.clientId !== null,
    );
    const tabId = joined.clientId!;
    let closedTab = false;
    coordinator.on('client-progress', ({ round, clientId }) => {
      if (round === 1 && clientId === tabId && !closedTab) {
        closedTab = true;
        void tab.page.close();
      }
    });
    clients = await nodeClients(coordinator.url, 3);
    const roundOne = await new Promise<RoundHistoryEntry>((resolve) =>
      coordinator.once('round-end', resolve),
    );
    expect(closedTab).toBe(true);
    expect([roundOne.status, roundOne.participants, roundOne.dropped]).toEqual(['completed', 3, 1]);

    // Same profile, same IndexedDB: the same identity comes back and takes part in round 2.
    tab = await tabs.open(
      context,
      `${coordinator.url}/join?sample=1&shard=1&min-participants=3&backend=wasm`,
    );
    const history = await coordinator.done;
    expect(history.rounds.map((r) => [r.status, r.participants])).toEqual([
      ['completed', 3],
      ['completed', 4],
    ]);
    const back = await waitForGlobal<JoinHook>(tab.page, 'cohortJoin', (s) => s.state === 'done');
    expect(back.clientId).toBe(tabId);
    const rounds = await readPersistedRounds(federation.database('run.db'), 'browser');
    const tabIn = rounds.map((r) => r.participations.find((p) => p.clientId === tabId)?.status);
    expect(tabIn).toEqual(['dropped', 'completed']);
  }, 300_000);
});

/**
 * Writes `perClass` PNGs of random noise for each of `classes` classes (folders `0`..`9`) and
 * returns the files, so any image's bytes are unique and findable in recorded traffic.
 */
function writeNoisePngs(dir: string, classes: number, perClass: number): string[] {
  const files: string[] = [];
  for (let c = 0; c < classes; c++) {
    const folder = join(dir, String(c));
    mkdirSync(folder);
    for (let i = 0; i < perClass; i++) {
      const png = new PNG({ width: 28, height: 28, colorType: 0 });
      for (let p = 0; p < 28 * 28; p++) {
        const v = Math.floor(Math.random() * 256);
        png.data[p * 4] = v;
        png.data[p * 4 + 1] = v;
        png.data[p * 4 + 2] = v;
        png.data[p * 4 + 3] = 255;
      }
      const file = join(folder, `${i}.png`);
      writeFileSync(file, PNG.sync.write(png, { colorType: 0 }));
      files.push(file);
    }
  }
  return files;
}

/**
 * Byte strings any upload of the image would contain: a slice of the PNG file, a row of its
 * pixel bytes, and that row as float32 in [0, 1] (the training tensor).
 */
function imageNeedles(file: string): Buffer[] {
  const raw = readFileSync(file);
  const png = PNG.sync.read(raw);
  const row = 14;
  const bytes = Buffer.from(Array.from({ length: 28 }, (_, x) => png.data[(row * 28 + x) * 4]!));
  const floats = Buffer.from(Float32Array.from(bytes, (b) => b / 255).buffer);
  return [
    raw.subarray(Math.floor(raw.length / 2) - 16, Math.floor(raw.length / 2) + 16),
    bytes,
    floats.subarray(0, 48),
  ];
}
