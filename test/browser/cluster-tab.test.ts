import type { BrowserContext } from 'playwright-core';
import { Coordinator } from '../../coordinator/coordinator';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import { findBrowserAssets } from '../../coordinator/web/browser-assets';
import type { NodeClient } from '../../client-node/node-client';
import { generateIdentity } from '../../shared/identity';
import { useWasmBackend } from '../helpers/backend';
import { describeWithChromium } from '../helpers/browser-page';
import { BrowserTabs, waitForGlobal } from '../helpers/browser-tabs';
import {
  RedisServer,
  freshPostgresSchema,
  probeClusterServices,
} from '../helpers/cluster-services';
import { closeAll, slice, startClients } from '../helpers/federation';
import { smallMnist } from '../helpers/mnist-fixture';
import { readPersistedRounds } from '../helpers/persisted-rounds';
import { describeRequiring } from '../helpers/requires';

/**
 * A browser tab in cluster mode: it opens the join page of a follower process, trains on a
 * sample shard and takes part in the leader's secure rounds through that follower's gateway,
 * beside Node clients of the leader. Both coordinators run in this process, each with its
 * own socket.io server, Redis adapter, bus and leader-lock connection.
 */

interface JoinHook {
  state: string;
  clientId: string | null;
  summaries: { round: number; status: string }[];
  error: { code: string; message: string } | null;
}

const services = probeClusterServices();

describeWithChromium('a browser tab in a cluster', (chromium) => {
  describeRequiring('with PostgreSQL and redis-server', services, () => {
    let tabs: BrowserTabs;
    let redis: RedisServer;
    let schema: ReturnType<typeof freshPostgresSchema>;
    const coordinators: Coordinator[] = [];
    let clients: NodeClient[] = [];
    let profile: BrowserContext | undefined;

    beforeAll(async () => {
      if (findBrowserAssets() === null) {
        throw new Error('dist/browser is missing: run `npm run build` before the browser tests');
      }
      tabs = await BrowserTabs.launch(chromium);
      redis = await RedisServer.start();
      schema = freshPostgresSchema();
    }, 60_000);
    afterAll(async () => {
      await profile?.close();
      closeAll(clients);
      for (const c of coordinators) await c.stop();
      await tabs?.close();
      await redis?.kill();
      await schema?.drop();
    });

    test("a tab on a follower's join page trains in the leader's secure rounds", async () => {
      const backend = await useWasmBackend();
      const data = await smallMnist(1800, 300);
      const identity = generateIdentity();
      const config: CoordinatorConfigInput = {
        host: '127.0.0.1',
        port: 0,
        task: 'mnist',
        experiment: `tab-${Math.random().toString(36).slice(2, 8)}`,
        rounds: 2,
        minClients: 3,
        epochs: 1,
        batchSize: 16,
        secureAggregation: true,
        evaluation: 'centralized',
        database: schema.url,
        cluster: redis.url,
        sampleShards: 4,
        sampleShardSize: 300,
      };
      const deps = {
        identity,
        testSet: data.test,
        sampleData: { data: data.train, description: 'MNIST sample (public)' },
      };
      let leads = false;
      const leader = await Coordinator.start(config, {
        ...deps,
        observe: (c) => c.once('leading', () => (leads = true)),
      });
      coordinators.push(leader);
      for (let i = 0; i < 100 && !leads; i++) await new Promise((r) => setTimeout(r, 100));
      expect(leads).toBe(true);
      const follower = await Coordinator.start(config, deps);
      coordinators.push(follower);

      profile = await tabs.newProfile();
      const tab = await tabs.open(
        profile,
        `${follower.url}/join?sample=1&shard=0&min-participants=3&backend=wasm&name=tab-in-cluster`,
      );
      const rest = { train: slice(data.train, 1200, 1800), test: data.test };
      clients = await startClients(leader.url, 2, rest, 300, backend, () => ({
        minParticipants: 3,
      }));

      const history = await leader.done;
      expect(history.rounds.map((r) => [r.round, r.status, r.participants])).toEqual([
        [1, 'completed', 3],
        [2, 'completed', 3],
      ]);
      const join = await waitForGlobal<JoinHook>(tab.page, 'cohortJoin', (s) => s.state === 'done');
      expect(join.error).toBeNull();
      expect(join.summaries.map((s) => [s.round, s.status])).toEqual([
        [1, 'completed'],
        [2, 'completed'],
      ]);
      // The database names the tab as a browser participant of both rounds.
      const rounds = await readPersistedRounds(schema.url, config.experiment!);
      for (const round of rounds) {
        const browserParts = round.participations.filter((p) => p.platform === 'browser');
        expect(browserParts.map((p) => [p.clientId, p.displayName, p.status])).toEqual([
          [join.clientId, 'tab-in-cluster', 'completed'],
        ]);
      }
      await follower.done;
    });
  });
});
