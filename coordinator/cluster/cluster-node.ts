/**
 * One coordinator process's membership of a cluster: socket.io's Redis adapter on its server
 * (cluster-wide broadcasts, and the server-side events the bus rides on), the bus itself, the
 * gateway handlers every process serves, the leader's directory of remote clients, and the
 * PostgreSQL leader lock.
 */
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import type { Server } from 'socket.io';
import { CohortError, errorMessage } from '../../shared/errors';
import type { DoneMessage } from '../../shared/protocol/messages';
import type { ClientRegistry } from '../client-registry';
import type { Logger } from '../logger';
import { ClusterBus } from './cluster-bus';
import { serveAsGateway } from './gateway';
import { LeaderLock } from './leader-lock';
import { RemoteClients } from './remote-clients';

/** How long start-up waits for Redis before refusing to start. */
const REDIS_CONNECT_TIMEOUT_MS = 5_000;

/** What a process needs to join its cluster. */
export interface ClusterNodeOptions {
  redisUrl: string;
  databaseUrl: string;
  experiment: string;
  coordinatorId: string;
  io: Server;
  registry: ClientRegistry;
  log: Logger;
  url(): string;
  /** Tells this process's own clients that the run is over. */
  announceDone(message: DoneMessage): Promise<void>;
}

type RedisClient = ReturnType<typeof createClient>;

/** A process's part in a cluster; {@link ClusterNode.start} refuses to start without Redis. */
export class ClusterNode {
  role: 'leader' | 'follower' = 'follower';

  private constructor(
    readonly bus: ClusterBus,
    readonly remote: RemoteClients,
    readonly lock: LeaderLock,
    private readonly redis: RedisClient[],
  ) {}

  static async start(options: ClusterNodeOptions): Promise<ClusterNode> {
    const { log } = options;
    const pub = createClient({
      url: options.redisUrl,
      socket: {
        connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
        // Back off to once a second while Redis is away; rounds in flight fail meanwhile.
        reconnectStrategy: (retries: number) => Math.min(100 * (retries + 1), 1_000),
      },
    });
    const sub = pub.duplicate();
    let lastWarning = 0;
    for (const client of [pub, sub]) {
      client.on('error', (error: unknown) => {
        if (Date.now() - lastWarning < 5_000) return;
        lastWarning = Date.now();
        log.warn(`cluster: Redis: ${errorMessage(error)}`);
      });
    }
    try {
      await withTimeout(
        Promise.all([pub.connect(), sub.connect()]),
        REDIS_CONNECT_TIMEOUT_MS,
        `no answer within ${REDIS_CONNECT_TIMEOUT_MS / 1000} s`,
      );
    } catch (error) {
      await Promise.all([pub, sub].map((c) => c.disconnect().catch(() => undefined)));
      throw new CohortError(
        'CLUSTER_UNAVAILABLE',
        `cannot reach Redis at ${options.redisUrl.replace(/\/\/[^@/]*@/, '//***@')}: ${errorMessage(error)}`,
      );
    }
    swallowPublishFailures(pub);
    options.io.adapter(createAdapter(pub, sub, { key: `cohort:${options.experiment}` }));
    const holder: { node?: ClusterNode } = {};
    const bus = new ClusterBus(options.io, {
      coordinatorId: options.coordinatorId,
      url: () => options.url(),
      role: () => holder.node?.role ?? 'follower',
      clients: () => options.registry.size,
      log,
    });
    serveAsGateway({
      bus,
      registry: options.registry,
      log,
      announceDone: (message) => options.announceDone(message),
    });
    const remote = new RemoteClients(bus, options.coordinatorId, log);
    let lock: LeaderLock;
    try {
      lock = await LeaderLock.connect(options.databaseUrl, options.experiment, log);
    } catch (error) {
      await Promise.all([pub, sub].map((c) => c.disconnect().catch(() => undefined)));
      throw error;
    }
    const node = new ClusterNode(bus, remote, lock, [pub, sub]);
    holder.node = node;
    bus.on('peer-joined', (peer) =>
      log.info(`cluster: ${peer.role} ${peer.nodeId.slice(0, 8)} at ${peer.url} joined`),
    );
    bus.on('peer-lost', (peer) =>
      log.warn(`cluster: ${peer.role} ${peer.nodeId.slice(0, 8)} at ${peer.url} went silent`),
    );
    bus.start();
    return node;
  }

  /** Leaves the cluster: the bus, the lock (leadership passes on), Redis. */
  async close(): Promise<void> {
    this.bus.close();
    await this.lock.close();
    // quit, not disconnect: commands still queued (the adapter's unsubscribes, issued without
    // awaiting) are sent first instead of being rejected into nobody's hands.
    await Promise.all(
      this.redis.map((c) =>
        withTimeout(c.quit(), 2_000, 'Redis did not answer QUIT').catch(() =>
          c.disconnect().catch(() => undefined),
        ),
      ),
    );
  }
}

/**
 * The adapter publishes without awaiting, so a publish that fails while Redis is away (EPIPE,
 * a closed connection) would be an unhandled rejection and crash the process. A lost publish
 * is what an outage means anyway: the requests it carried time out, the heartbeats it
 * carried stop, and the rounds in flight end; so failures are dropped here (the client's
 * 'error' listener has already said Redis is away).
 */
function swallowPublishFailures(client: RedisClient): void {
  const publish = client.publish.bind(client);
  (client as { publish: typeof publish }).publish = (...args: Parameters<typeof publish>) =>
    publish(...args).catch(() => 0);
}

async function withTimeout<T>(work: Promise<T>, ms: number, reason: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(reason)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
