import { EventEmitter, setMaxListeners } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { createServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { Server } from 'socket.io';
import type { Dataset } from '../shared/data/dataset';
import { toHex } from '../shared/bytes';
import { CohortError, errorMessage, isCohortError } from '../shared/errors';
import type { IdentityKeyPair } from '../shared/identity';
import { clientIdFromPublicKey, generateIdentity } from '../shared/identity';
import { buildModel } from '../shared/model/build-model';
import { getModelSpec } from '../shared/model/registry';
import { specHash } from '../shared/model/spec-hash';
import type { ClientToServerEvents, ServerToClientEvents } from '../shared/protocol/events';
import type { DoneMessage } from '../shared/protocol/messages';
import { createStrategy } from '../shared/strategies/create-strategy';
import type { Strategy } from '../shared/strategies/strategy';
import { applyWeights, bytesToFloats, extractWeights, hashWeights } from '../shared/weights/codec';
import { ClientRegistry } from './client-registry';
import type { CoordinatorConfig, CoordinatorConfigInput } from './config';
import { resolveCoordinatorConfig } from './config';
import { GlobalModelEvaluator } from './evaluation';
import { exportModel } from './export-model';
import type { RunHistory } from './history';
import { historyEntryOf, roundHistoryEntrySchema } from './history';
import type { CoordinatorEvents } from './coordinator-events';
import type { Logger } from './logger';
import { debugLogger } from './logger';
import type { CohortStore } from './persistence/store';
import { openStore, redactDatabaseUrl } from './persistence/store';
import type { GlobalModel, RoundContext } from './round-runner';
import { runRound } from './round-runner';
import { guardConnections } from './connection-guard';
import type { ConnectionGuard } from './connection-guard';
import type { EnrollmentPolicy } from './enrollment';
import { loadEnrollmentPolicy } from './enrollment';
import type {
  ControlAction,
  CurrentRound,
  DashboardSnapshot,
  JoinInfo,
  RunStatus,
} from '../shared/protocol/web';
import { WEB_PATHS } from '../shared/protocol/web';
import { resolveToken } from './token-file';
import { BrowserAssets, findBrowserAssets } from './web/browser-assets';
import { CoordinatorMetrics, packetBytes } from './web/coordinator-metrics';
import type { DashboardFeed } from './web/dashboard-feed';
import { attachDashboardFeed } from './web/dashboard-feed';
import {
  dashboardClients,
  dashboardRound,
  publicConfig,
  roundsTakenPart,
} from './web/dashboard-snapshot';
import { NO_SAMPLE, SampleShards } from './web/sample-shards';
import { UnmaskWorkerPool } from './unmask-pool';
import { ClusterNode } from './cluster/cluster-node';
import type { RoundClient } from './client-registry';
import { createWebRoutes } from './web/web-routes';

/** How long the coordinator waits for clients to acknowledge the end of the run. */
const DONE_ACK_TIMEOUT_MS = 2_000;

export type { CoordinatorEvents };

/** Extra start-up wiring that is not user configuration. */
export interface CoordinatorDependencies {
  log?: Logger;
  /** Coordinator-held test set for centralized evaluation (null: none). */
  testSet?: Dataset | null;
  /** Injected store (tests); otherwise opened from config.database. */
  store?: CohortStore;
  /** How the history names the database, when its URL would mislead (a temporary file). */
  databaseLabel?: string;
  /** Attaches listeners before start-up, so 'listening' and 'resumed' are not missed. */
  observe?(coordinator: Coordinator): void;
  /**
   * The coordinator's long-term Ed25519 identity (clients may pin its public key with
   * `--coordinator-key`); a fresh in-memory one when absent.
   */
  identity?: IdentityKeyPair;
  /** Who may register; loaded from the config (token, token file, allowlist) when absent. */
  enrollment?: EnrollmentPolicy;
  /**
   * Public data to offer browser tabs as sample shards (`/join?sample=1`), cut by
   * `--sample-shards` and `--sample-shard-size`; none when absent or null.
   */
  sampleData?: { data: Dataset; description: string } | null;
  /** Where the built browser pages are (`dist/browser`); found next to the code when absent. */
  browserAssetsDir?: string | null;
}

/**
 * A running coordinator: owns the socket.io server, the round loop, the store. `done`
 * resolves with the run history after the last round (or rejects on a fatal error);
 * `stop()` ends everything and is safe to call at any time.
 */
export class Coordinator extends EventEmitter<CoordinatorEvents> {
  readonly config: CoordinatorConfig;
  /** The id every client signature of this run is bound to: derived from the public key. */
  readonly coordinatorId: string;
  /** The coordinator's Ed25519 public key in hex, as sent in each challenge. */
  readonly publicKeyHex: string;
  private readonly identity: IdentityKeyPair;
  private readonly log: Logger;
  private readonly httpServer: HttpServer | HttpsServer;
  private readonly io: Server<ClientToServerEvents, ServerToClientEvents>;
  /** Why a round still `running` at stop() was not finished, as recorded in the database. */
  private interruptReason = 'the coordinator stopped during this round';
  /** Connection limits; told when a connection registers. */
  private readonly guard: ConnectionGuard;
  private registry!: ClientRegistry;
  private store!: CohortStore;
  private ownsStore = true;
  private readonly strategy: Strategy;
  private readonly evalModel: tf.LayersModel;
  private readonly evaluator: GlobalModelEvaluator;
  private readonly databaseLabel: string | undefined;
  private readonly givenEnrollment: EnrollmentPolicy | undefined;
  private stopped = false;
  /** Aborts the round in flight when the coordinator stops. */
  private readonly shutdown = new AbortController();
  private stopWaiters: Array<() => void> = [];
  private experimentId = '';
  private history!: RunHistory;
  private enrollment!: EnrollmentPolicy;
  private readonly sample: SampleShards | null;
  private readonly assets: BrowserAssets;
  private webHandler: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
  private feed: DashboardFeed | null = null;
  private metrics!: CoordinatorMetrics;
  private runStatus: RunStatus = 'waiting';
  private pauseRequested = false;
  private resumeWaiters: Array<() => void> = [];
  private current: CurrentRound | null = null;
  /** Worker threads for unmasking; each starts when a secure round first needs it. */
  private readonly unmaskPool: UnmaskWorkerPool;
  /** Cluster mode: this process's membership (bus, gateway, leader lock); null alone. */
  private cluster: ClusterNode | null = null;
  /** Why the run stopped when that was not asked for (cluster mode: leadership lost). */
  private stopReason: CohortError | null = null;
  /** Cluster mode: the leader said the run is over (followers then finish too). */
  private readonly runFinishedElsewhere = new AbortController();
  /** When each connected client was last heard from, for the dashboard. */
  private readonly lastSeen = new Map<string, Date>();
  port = 0;

  private constructor(config: CoordinatorConfig, deps: CoordinatorDependencies) {
    super();
    // Every request of a round listens for shutdown: large cohorts are expected, not a leak.
    setMaxListeners(0, this.shutdown.signal);
    this.config = config;
    this.log = deps.log ?? debugLogger('cohort:coordinator');
    this.databaseLabel = deps.databaseLabel;
    this.givenEnrollment = deps.enrollment;
    this.identity = deps.identity ?? generateIdentity();
    this.coordinatorId = clientIdFromPublicKey(this.identity.publicKey);
    this.publicKeyHex = toHex(this.identity.publicKey);

    const tls = readTlsFiles(config);
    // socket.io answers its own paths first; every other request goes to the web routes.
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.handleHttp(req, res);
    this.httpServer = tls ? createHttpsServer(tls, onRequest) : createServer(onRequest);
    // Cut at once: the coordinator keeps the offered shards, not the whole source set.
    this.sample =
      deps.sampleData && config.sampleShards > 0
        ? new SampleShards(deps.sampleData.data, {
            shards: config.sampleShards,
            shardSize: config.sampleShardSize,
            seed: config.seed,
            description: deps.sampleData.description,
          })
        : null;
    this.assets = new BrowserAssets(
      deps.browserAssetsDir !== undefined ? deps.browserAssetsDir : findBrowserAssets(),
    );
    if (deps.store) {
      this.store = deps.store;
      this.ownsStore = false;
    }
    const spec = getModelSpec(config.task);
    this.evalModel = buildModel(spec, config.seed);
    this.evaluator = new GlobalModelEvaluator(
      config,
      this.evalModel,
      deps.testSet ?? null,
      this.log,
    );
    const modelBytes = extractWeights(this.evalModel).manifest.length * 4;
    this.io = new Server(this.httpServer, {
      maxHttpBufferSize: config.maxMessageBytes ?? Math.ceil(modelBytes * 1.25) + 1_000_000,
      cors: { origin: '*' },
      pingTimeout: 60_000,
      // A transport connection that never joins the namespace is closed as one that never
      // registers is (socket.io's own default would keep it 45 s).
      connectTimeout: config.registerTimeoutMs,
    });
    this.guard = guardConnections(this.io, config, this.log);
    this.unmaskPool = new UnmaskWorkerPool({
      ...(config.unmaskThreads !== undefined ? { threads: config.unmaskThreads } : {}),
      onFallback: (reason) => this.log.warn(reason),
    });
    this.strategy = createStrategy({
      name: config.strategy,
      ...(config.serverLearningRate !== undefined ? { serverLr: config.serverLearningRate } : {}),
      ...(config.proximalMu !== undefined ? { proximalMu: config.proximalMu } : {}),
    });
  }

  /**
   * Validates the options, opens (and migrates) the database, resumes the experiment if it
   * exists, and starts listening. Every refusal happens here, before a client can connect.
   */
  static async start(
    input: CoordinatorConfigInput,
    deps: CoordinatorDependencies = {},
  ): Promise<Coordinator> {
    const config = resolveCoordinatorConfig(input);
    const coordinator = new Coordinator(config, deps);
    deps.observe?.(coordinator);
    try {
      await coordinator.init();
    } catch (error) {
      await coordinator.stop();
      throw error;
    }
    return coordinator;
  }

  private running: Promise<RunHistory> | null = null;

  /** The run: resolves with the history after the last round, rejects if it cannot finish. */
  get done(): Promise<RunHistory> {
    if (!this.running) throw new CohortError('INTERNAL', 'coordinator has not started');
    return this.running;
  }

  get url(): string {
    const host =
      this.config.host === '0.0.0.0' || this.config.host === '::' ? '127.0.0.1' : this.config.host;
    const scheme = this.config.tlsCert !== undefined ? 'https' : 'http';
    return `${scheme}://${host}:${this.port}`;
  }

  /** Connected and registered clients right now. */
  get connectedClients(): number {
    return this.registry.size;
  }

  private async init(): Promise<void> {
    const config = this.config;
    const modelSpecHash = await specHash(getModelSpec(config.task));
    if (this.ownsStore)
      this.store = await openStore(config.database, {
        log: (l) => this.log.info(l),
        busyTimeoutMs: config.databaseBusyTimeoutMs,
      });
    const opened = await this.store.openExperiment(this.experimentInput(modelSpecHash));
    this.experimentId = opened.experimentId;
    // In a cluster only the leader may call a round interrupted: it runs them.
    if (!config.cluster) await this.recordInterruptedRounds();
    const global = config.cluster ? null : await this.initialModel(opened.lastCompletedRound);
    this.history = {
      experiment: config.experiment!,
      task: config.task,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      resumedFromRound: opened.lastCompletedRound,
      rounds: [],
      modelExportedTo: null,
      historyFile: config.jsonPath ? resolve(config.jsonPath) : null,
      database: this.databaseLabel ?? redactDatabaseUrl(config.database),
    };
    this.enrollment = this.givenEnrollment ?? (await loadEnrollmentPolicy(config, this.log));
    this.registry = new ClientRegistry(this.io, {
      identity: this.identity,
      task: config.task,
      modelSpecHash,
      experiment: config.experiment!,
      secureAggregation: config.secureAggregation,
      registerTimeoutMs: config.registerTimeoutMs,
      log: this.log,
      enrollment: this.enrollment,
      onRegister: async (client, method) => {
        const seenAt = new Date();
        await this.store.upsertClient({
          id: client.id,
          publicKey: Buffer.from(client.publicKey).toString('hex'),
          ...(client.info.displayName !== undefined
            ? { displayName: client.info.displayName }
            : {}),
          platform: client.info.platform,
          backend: client.info.backend,
          seenAt,
        });
        await this.store.recordEnrollment({
          experimentId: this.experimentId,
          clientId: client.id,
          method,
          at: seenAt,
        });
      },
    });
    this.registry.on('registered', (client) => {
      this.guard.registered(client.socket);
      this.emit('client-joined', {
        clientId: client.id,
        backend: client.info.backend,
        platform: client.info.platform,
        connected: this.registry.size,
      });
    });
    this.registry.on('left', (clientId, reason) =>
      this.emit('client-left', { clientId, reason, connected: this.registry.size }),
    );
    if (config.cluster) await this.joinCluster(config.cluster);
    await this.startWeb();
    await new Promise<void>((resolve, reject) => {
      this.httpServer.once('error', (error) =>
        reject(
          new CohortError(
            'CONFIG_INVALID',
            `cannot listen on ${config.host}:${config.port}: ${error.message}`,
          ),
        ),
      );
      this.httpServer.listen(config.port, config.host, () => resolve());
    });
    this.port = (this.httpServer.address() as AddressInfo).port;
    this.emit('listening', { url: this.url, port: this.port });
    if (global === null) {
      this.running = this.lead(modelSpecHash);
    } else {
      if (opened.lastCompletedRound > 0) this.emit('resumed', { round: opened.lastCompletedRound });
      this.running = this.run(global, opened.lastCompletedRound);
    }
    // The caller observes `done`; this guard keeps an early stop from surfacing as unhandled.
    this.running.catch(() => undefined);
  }

  /** The experiment as the database keeps it: the config without secrets or local paths. */
  private experimentInput(modelSpecHash: string) {
    const config = this.config;
    return {
      name: config.experiment!,
      task: config.task,
      modelSpecHash,
      config: {
        ...config,
        database: undefined,
        jsonPath: undefined,
        exportDir: undefined,
        port: undefined,
        host: undefined,
        // Secrets: never in the database (nor in a log line).
        joinToken: undefined,
        adminToken: undefined,
        dashboardToken: undefined,
      },
    };
  }

  /** Records the rounds a previous leader left running as aborted (they cannot be finished). */
  private async recordInterruptedRounds(): Promise<void> {
    const interrupted = await this.store.abortInterruptedRounds(
      this.experimentId,
      'the coordinator ended during this round (killed or crashed) before recording it',
    );
    for (const round of interrupted) {
      this.log.warn(
        `round ${round} was interrupted when the last coordinator ended: recorded as aborted`,
      );
    }
  }

  /**
   * Cluster mode: installs socket.io's Redis adapter, serves as a gateway for this process's
   * clients, and opens the leader-lock connection (leadership itself is taken in lead()).
   */
  private async joinCluster(redisUrl: string): Promise<void> {
    this.cluster = await ClusterNode.start({
      redisUrl,
      databaseUrl: this.config.database,
      experiment: this.config.experiment!,
      coordinatorId: this.coordinatorId,
      io: this.io,
      registry: this.registry,
      log: this.log,
      url: () => this.url,
      announceDone: (message) => this.announceDoneLocally(message),
    });
    this.cluster.bus.listen('run-finished', () => this.runFinishedElsewhere.abort());
    // The leader's rounds, told to every process: their dashboards, /metrics and logs follow.
    this.cluster.bus.listen('round-end', (body) => {
      if (this.cluster?.role === 'leader') return;
      const entry = roundHistoryEntrySchema.safeParse(body);
      if (entry.success) this.emit('round-end', entry.data);
    });
    this.cluster.bus.listen('round-state', (body) => {
      if (this.cluster?.role === 'leader') return;
      const state = body as { current?: CurrentRound | null; status?: RunStatus } | null;
      this.current = state?.current ?? null;
      if (state?.status) this.setStatus(state.status, 'told by the leader');
      this.feed?.changed();
    });
    this.cluster.lock.on('lost', (error) => {
      // Another process may lead already: this one records nothing more and leaves.
      this.log.warn(`cluster: leadership lost (${error.message}): this process stops`);
      this.stopReason = new CohortError(
        'LEADERSHIP_LOST',
        `the PostgreSQL leader lock was lost (${error.message}); another process takes over, and this one stops without recording the round in flight`,
      );
      this.setStatus('failed', this.stopReason.reason);
      void this.stop();
    });
  }

  /**
   * Cluster mode: waits for the leader lock (or for the leader to finish the run), then
   * takes over where the database says: rounds left running by the last leader are recorded
   * as aborted, and training resumes after the last completed round.
   */
  private async lead(modelSpecHash: string): Promise<RunHistory> {
    const cluster = this.cluster!;
    const waiting = AbortSignal.any([this.shutdown.signal, this.runFinishedElsewhere.signal]);
    this.setStatus('waiting', 'following the cluster leader');
    this.emit('following', { nodeId: cluster.bus.nodeId, peers: cluster.bus.peers().length });
    const leads = await cluster.lock.acquire(waiting);
    if (!leads) {
      if (this.stopped)
        throw (
          this.stopReason ??
          new CohortError('INTERNAL', 'coordinator stopped before the last round')
        );
      // This process only followed: its summary is the leader's rounds, as the database has them.
      const recorded = await this.store.listRounds(this.experimentId).catch(() => []);
      this.history.rounds = recorded.filter((r) => r.status !== 'running').map(historyEntryOf);
      this.history.finishedAt = new Date().toISOString();
      this.setStatus('finished', 'the leader finished the run');
      this.emit('finished', this.history);
      return this.history;
    }
    cluster.role = 'leader';
    await this.recordInterruptedRounds();
    const opened = await this.store.openExperiment(this.experimentInput(modelSpecHash));
    this.history.resumedFromRound = opened.lastCompletedRound;
    this.log.info(
      `cluster: this process leads now (${cluster.bus.nodeId.slice(0, 8)}); resuming after round ${opened.lastCompletedRound}`,
    );
    this.emit('leading', {
      nodeId: cluster.bus.nodeId,
      resumeAfterRound: opened.lastCompletedRound,
    });
    if (opened.lastCompletedRound > 0) this.emit('resumed', { round: opened.lastCompletedRound });
    const tell = () =>
      cluster.bus.send('*', 'round-state', { current: this.current, status: this.runStatus });
    for (const event of ['round-start', 'round-phase', 'round-end', 'status'] as const) {
      this.on(event, tell);
    }
    this.on('round-end', (entry) => cluster.bus.send('*', 'round-end', entry));
    return this.run(await this.initialModel(opened.lastCompletedRound), opened.lastCompletedRound);
  }

  /** Every client a round may select: this process's, and in a cluster every gateway's. */
  private async selectableClients(): Promise<RoundClient[]> {
    const local: RoundClient[] = this.registry.list();
    if (!this.cluster) return local;
    const seen = new Set(local.map((c) => c.id));
    const remote = (await this.cluster.remote.list()).filter((c) => !seen.has(c.id));
    return [...local, ...remote];
  }

  /** Registered clients in the whole federation, as last reported (cheap). */
  private federationSize(): number {
    return this.registry.size + (this.cluster?.remote.reportedCount() ?? 0);
  }

  private async initialModel(lastCompletedRound: number): Promise<GlobalModel> {
    const { manifest, data } = extractWeights(this.evalModel);
    let weights = data;
    let strategyState = this.strategy.initialState(manifest.length);
    if (lastCompletedRound > 0) {
      const checkpoint = await this.store.latestCheckpoint(this.experimentId);
      if (!checkpoint) {
        throw new CohortError(
          'DATABASE_ERROR',
          `round ${lastCompletedRound} completed but no checkpoint was found`,
        );
      }
      weights = bytesToFloats(checkpoint.weights);
      if (weights.length !== manifest.length) {
        throw new CohortError('EXPERIMENT_MISMATCH', 'checkpoint does not fit the model');
      }
      strategyState = bytesToFloats(checkpoint.strategyState);
    }
    return { manifest, weights, strategyState, hash: await hashWeights(manifest, weights) };
  }

  private async run(initial: GlobalModel, lastCompletedRound: number): Promise<RunHistory> {
    let global = initial;
    /** The last round whose result and checkpoint are in the database. */
    let lastSaved = lastCompletedRound;
    for (
      let round = lastCompletedRound + 1;
      round <= this.config.rounds && !this.stopped;
      round++
    ) {
      // A pause asked while waiting for clients holds once they are there, too.
      let ready = false;
      do {
        await this.pauseGate();
        if (this.stopped) break;
        ready = await this.waitForClients(round);
      } while (ready && this.pauseRequested && !this.stopped);
      if (!ready && !this.stopped) {
        throw new CohortError(
          'ROUND_ABORTED',
          `gave up waiting for ${this.config.minClients} clients before round ${round}`,
        );
      }
      if (!ready) break;
      this.setStatus(this.pauseRequested ? 'pausing' : 'running', `round ${round}`);
      let outcome: Awaited<ReturnType<typeof runRound>>;
      try {
        outcome = await runRound(this.roundContext(), round, global);
      } catch (error) {
        if (this.stopReason) throw this.stopReason;
        if (isCohortError(error) && error.code === 'DATABASE_ERROR')
          throw await this.persistenceFailed(round, lastSaved, error);
        throw error;
      } finally {
        this.current = null;
      }
      const { entry, next } = outcome;
      global = next;
      if (entry.status === 'completed') lastSaved = round;
      this.history.rounds.push(entry);
      await this.writeHistory();
      this.emit('round-end', entry);
      this.io.emit('round-summary', {
        round,
        status: entry.status,
        participants: entry.participants,
        dropped: entry.dropped,
        trainLoss: entry.trainLoss,
        testAccuracy: entry.testAccuracy,
        reason: entry.failureReason,
      });
    }
    if (this.stopped)
      throw (
        this.stopReason ?? new CohortError('INTERNAL', 'coordinator stopped before the last round')
      );
    if (this.config.exportDir) {
      applyWeights(this.evalModel, global.manifest, global.weights);
      this.history.modelExportedTo = await exportModel(this.evalModel, this.config.exportDir);
    }
    this.history.finishedAt = new Date().toISOString();
    await this.writeHistory();
    this.setStatus('finished', 'all rounds done');
    const last = [...this.history.rounds].reverse().find((r) => r.testAccuracy !== null);
    // Observers first: clients leave as soon as they hear the run is over.
    this.emit('finished', this.history);
    await this.announceDone({
      reason: 'experiment complete',
      rounds: this.config.rounds,
      finalAccuracy: last?.testAccuracy ?? null,
    });
    return this.history;
  }

  /**
   * A round could not be saved (disk full, the database locked past --database-busy-timeout,
   * the server gone): it fails loudly instead of being announced as done. Going on would
   * train on results the database does not hold, so the run stops; every completed round is
   * already saved (each is one transaction), and a restart on the same database resumes
   * after the last of them. Clients are told the round failed and, as after a crash, wait
   * and reconnect to the restarted coordinator.
   */
  private async persistenceFailed(
    round: number,
    lastSaved: number,
    error: CohortError,
  ): Promise<CohortError> {
    const saved = lastSaved > 0 ? `rounds 1-${lastSaved} are saved` : 'no round was completed';
    const failure = new CohortError(
      'DATABASE_ERROR',
      `round ${round} could not be saved, so it failed and the run stopped (${error.reason}); ` +
        `${saved}: fix the database and start the coordinator again on it to resume`,
      { round, lastSavedRound: lastSaved },
    );
    this.log.warn(failure.message);
    this.io.emit('round-summary', {
      round,
      status: 'failed',
      participants: 0,
      dropped: 0,
      trainLoss: null,
      testAccuracy: null,
      reason: failure.message,
    });
    // Best effort: the database may work again (a lock released); if not, the next start
    // records the round as interrupted.
    this.interruptReason = `not saved: ${error.reason}`;
    await settleWithin(
      this.store.abortInterruptedRounds(this.experimentId, this.interruptReason),
      this.config.databaseBusyTimeoutMs,
    );
    this.setStatus('failed', failure.message);
    return failure;
  }

  /**
   * Tells every connected client that the run is over and waits, at most DONE_ACK_TIMEOUT_MS,
   * for each to acknowledge: a coordinator stopped right after (the CLI's exit) would
   * otherwise discard the message still in flight, and its clients would wait forever.
   */
  private async announceDone(message: DoneMessage): Promise<void> {
    const cluster = this.cluster;
    if (cluster) {
      cluster.bus.send('*', 'run-finished', {});
      await Promise.all(
        cluster.bus
          .peers()
          .map((peer) =>
            cluster.bus
              .request(peer.nodeId, 'done', message, { timeoutMs: DONE_ACK_TIMEOUT_MS * 2 })
              .catch(() => undefined),
          ),
      );
    }
    await this.announceDoneLocally(message);
  }

  /** Tells this process's own clients the run is over, waiting (bounded) for their acks. */
  private async announceDoneLocally(message: DoneMessage): Promise<void> {
    await Promise.all(
      [...this.io.sockets.sockets.values()].map(
        (socket) =>
          socket
            .timeout(DONE_ACK_TIMEOUT_MS)
            .emitWithAck('done', message)
            .catch(() => undefined), // no answer in time (an older client): not waited for
      ),
    );
  }

  /** Resolves true once minClients are registered; false if stopped or the wait timed out. */
  private async waitForClients(round: number): Promise<boolean> {
    const needed = this.config.minClients;
    if (this.federationSize() >= needed) return true;
    this.setStatus('waiting', `waiting for ${needed} clients`);
    this.emit('waiting', { round, connected: this.federationSize(), needed });
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let poll: NodeJS.Timeout | undefined;
      const finish = (value: boolean) => {
        this.registry.off('registered', check);
        if (timer) clearTimeout(timer);
        if (poll) clearInterval(poll);
        this.stopWaiters = this.stopWaiters.filter((w) => w !== onStop);
        resolve(value);
      };
      const check = () => {
        if (this.federationSize() >= needed) finish(true);
      };
      const onStop = () => finish(false);
      this.stopWaiters.push(onStop);
      this.registry.on('registered', check);
      // Other processes' clients are known from their heartbeats.
      if (this.cluster) poll = setInterval(check, 250);
      if (this.config.waitForClientsMs !== undefined) {
        timer = setTimeout(() => {
          this.log.warn(`gave up waiting for ${needed} clients`);
          finish(false);
        }, this.config.waitForClientsMs);
      }
    });
  }

  /** What a round needs from this coordinator; rounds are plain functions over it. */
  private roundContext(): RoundContext {
    return {
      config: this.config,
      clients: () => this.selectableClients(),
      store: this.store,
      strategy: this.strategy,
      evaluator: this.evaluator,
      experimentId: this.experimentId,
      experiment: this.config.experiment!,
      coordinatorId: this.coordinatorId,
      log: this.log,
      signal: this.shutdown.signal,
      isStopped: () => this.stopped,
      onRoundStart: (info) => {
        this.current = { round: info.round, phase: 'selecting', selected: info.selected };
        this.emit('round-start', info);
      },
      onPhase: (round, phase) => {
        if (this.current?.round === round) this.current = { ...this.current, phase };
        this.emit('round-phase', { round, phase });
      },
      onProgress: (round, clientId, fraction) =>
        this.emit('client-progress', { round, clientId, fraction }),
      removeMasks: this.unmaskPool.removeMasks,
      ...(this.cluster ? this.clusterRoundContext(this.cluster) : {}),
    };
  }

  /** What a round needs from the cluster: partial sums, and the fencing check. */
  private clusterRoundContext(
    cluster: ClusterNode,
  ): Pick<RoundContext, 'partials' | 'assertLeader'> {
    return {
      partials: {
        collect: (gateway, roundId) => cluster.remote.partialSum(gateway, roundId),
        heldMean: (gateway, roundId, weights) => cluster.remote.heldMean(gateway, roundId, weights),
        discard: (roundId) => cluster.remote.discard(roundId),
      },
      assertLeader: () => cluster.lock.assertHeld(),
    };
  }

  /** Routes a plain HTTP request: 503 until start-up has wired the web side. */
  private handleHttp(req: IncomingMessage, res: ServerResponse): void {
    if (this.webHandler) {
      this.webHandler(req, res);
      return;
    }
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '1' });
    res.end('the coordinator is starting\n');
  }

  /**
   * Wires the web side: tokens (read, or created in their files), metrics, sample shards,
   * the dashboard feed and the HTTP routes. Runs before listening, so no request meets a
   * half-built coordinator.
   */
  private async startWeb(): Promise<void> {
    const config = this.config;
    const adminToken = await resolveToken(
      config.adminToken,
      config.adminTokenFile,
      { what: 'admin token', giveTo: 'the dashboard controls ask for it' },
      this.log,
    );
    const dashboardToken = await resolveToken(
      config.dashboardToken,
      config.dashboardTokenFile,
      { what: 'dashboard token', giveTo: 'open the dashboard with ?token=<its content>' },
      this.log,
    );
    this.metrics = new CoordinatorMetrics(this, {
      clientsByPlatform: () => {
        const counts: Record<string, number> = {};
        for (const c of this.registry.list()) {
          counts[c.info.platform] = (counts[c.info.platform] ?? 0) + 1;
        }
        return counts;
      },
      unregisteredConnections: () => this.guard.unregistered,
      federationClients: () => this.federationSize(),
      clusterBytesReceived: () => this.cluster?.bus.bytesReceived ?? null,
    });
    this.io.engine.on('connection', (conn: NodeJS.EventEmitter) => {
      conn.on('packet', (packet: { data?: unknown }) =>
        this.metrics.countBytes('in', packetBytes(packet)),
      );
      conn.on('packetCreate', (packet: { data?: unknown }) =>
        this.metrics.countBytes('out', packetBytes(packet)),
      );
    });
    const feed = attachDashboardFeed(this.io, {
      token: dashboardToken,
      snapshot: () => this.snapshot(adminToken !== null),
      log: this.log,
    });
    this.feed = feed;
    const changed = () => feed.changed();
    this.on('client-joined', ({ clientId }) => {
      this.lastSeen.set(clientId, new Date());
      changed();
    });
    this.on('client-left', ({ clientId }) => {
      this.lastSeen.delete(clientId);
      changed();
    });
    this.on('client-progress', ({ clientId }) => {
      if (this.lastSeen.has(clientId)) this.lastSeen.set(clientId, new Date());
      changed();
    });
    for (const event of ['round-start', 'round-phase', 'round-end', 'status'] as const) {
      this.on(event, changed);
    }
    this.webHandler = createWebRoutes({
      assets: this.assets,
      joinInfo: () => this.joinInfo(),
      snapshot: () => this.snapshot(adminToken !== null),
      control: (action) => Promise.resolve(this.control(action)),
      joinUrl: () => this.joinUrl,
      sample: this.sample,
      metrics: this.metrics,
      adminToken,
      dashboardToken,
      log: this.log,
    });
  }

  /** The page a browser opens to join this run (shown on the dashboard, with a QR code). */
  get joinUrl(): string {
    const base = (this.config.publicUrl ?? this.url).replace(/\/+$/, '');
    return `${base}${WEB_PATHS.join}`;
  }

  /** Where the run is: waiting, running, pausing, paused, finished or stopped. */
  get status(): RunStatus {
    return this.runStatus;
  }

  private setStatus(status: RunStatus, reason: string): void {
    if (this.runStatus === status) return;
    this.runStatus = status;
    this.emit('status', { status, reason });
  }

  /** What a tab needs before it connects (`/api/join-info`). */
  joinInfo(): JoinInfo {
    return {
      experiment: this.config.experiment!,
      task: this.config.task,
      secureAggregation: this.config.secureAggregation,
      coordinatorKey: this.publicKeyHex,
      joinTokenRequired: this.enrollment.tokenRequired,
      sample: this.sample?.info ?? NO_SAMPLE,
    };
  }

  /** The dashboard's view, rebuilt from the database (history) and the registry (clients). */
  async snapshot(controls: boolean): Promise<DashboardSnapshot> {
    const rounds = await this.store.listRounds(this.experimentId);
    // In a cluster, every process's clients (rosters asked of the others): the whole federation.
    const listed: RoundClient[] = this.cluster
      ? await this.selectableClients()
      : this.registry.list();
    const live = listed.map((c) => ({
      id: c.id,
      displayName: c.info.displayName ?? null,
      platform: c.info.platform,
      backend: c.info.backend,
      connectedAt: c.connectedAt,
      lastSeenAt: this.lastSeen.get(c.id) ?? c.connectedAt,
    }));
    return {
      experiment: this.config.experiment!,
      task: this.config.task,
      status: this.runStatus,
      rounds: this.config.rounds,
      config: publicConfig(this.config),
      current: this.current,
      history: rounds.map(dashboardRound),
      clients: dashboardClients(live, roundsTakenPart(rounds)),
      joinUrl: this.joinUrl,
      controls,
      sample: this.sample?.info ?? NO_SAMPLE,
    };
  }

  /**
   * An admin action (dashboard or `/api/control`): pause lets the round in flight finish and
   * starts no new one; resume undoes it; stop ends the run as Ctrl-C does (completed rounds
   * stay in the database; a restart resumes). Idempotent, never throws.
   */
  control(action: ControlAction): { status: RunStatus; message: string } {
    const over = ['finished', 'stopped', 'failed'].includes(this.runStatus);
    if (over) return { status: this.runStatus, message: `the run is ${this.runStatus} already` };
    switch (action) {
      case 'pause':
        this.pauseRequested = true;
        if (this.current !== null) this.setStatus('pausing', 'pause asked by an admin');
        else this.setStatus('paused', 'paused by an admin');
        return { status: this.runStatus, message: 'no new round starts until resumed' };
      case 'resume': {
        const was = this.pauseRequested;
        this.pauseRequested = false;
        for (const wake of this.resumeWaiters.splice(0)) wake();
        if (this.runStatus === 'paused' || this.runStatus === 'pausing') {
          this.setStatus(this.current !== null ? 'running' : 'waiting', 'resumed by an admin');
        }
        return { status: this.runStatus, message: was ? 'resumed' : 'was not paused' };
      }
      case 'stop':
        this.setStatus('stopped', 'stopped by an admin');
        // After the answer has gone out: stopping closes the HTTP server too.
        setTimeout(() => void this.stop(), 50);
        return { status: 'stopped', message: 'stopping; completed rounds are kept' };
    }
  }

  /** Resolves when no pause is asked (at once when none is), or when the coordinator stops. */
  private async pauseGate(): Promise<void> {
    if (!this.pauseRequested || this.stopped) return;
    this.setStatus('paused', 'paused by an admin');
    await new Promise<void>((resolve) => {
      const wake = () => {
        this.stopWaiters = this.stopWaiters.filter((w) => w !== wake);
        resolve();
      };
      this.resumeWaiters.push(wake);
      this.stopWaiters.push(wake);
    });
  }

  /** Rewrites the `--json` history file, so a long run can be followed while it goes. */
  private async writeHistory(): Promise<void> {
    const path = this.history.historyFile;
    if (path === null) return;
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, JSON.stringify(this.history, null, 2) + '\n');
  }

  /** Stops the round loop, disconnects everyone, closes the server and the store. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.runStatus !== 'finished' && this.runStatus !== 'failed')
      this.setStatus('stopped', 'the coordinator stopped');
    this.feed?.close();
    this.shutdown.abort();
    for (const waiter of [...this.stopWaiters]) waiter();
    if (this.cluster) {
      // Closed under them, not sent away: a socket.io client told to disconnect does not
      // reconnect, and in a cluster these clients must fail over to the other processes.
      for (const socket of this.io.of('/').sockets.values()) socket.conn.close();
    } else {
      this.io.local.disconnectSockets(true);
    }
    await new Promise<void>((resolve) => {
      void this.io.close(() => resolve());
    });
    // Let the round in flight unwind (it sees `stopped` and records nothing) before closing.
    if (this.running) await this.running.catch(() => undefined);
    // A database that failed mid-write may never answer again: after a failure, these are
    // not waited on past the busy timeout (the next start recovers the file).
    const bounded = (work: Promise<unknown>) =>
      this.runStatus === 'failed' ? settleWithin(work, this.config.databaseBusyTimeoutMs) : work;
    // In a cluster only the lock holder may touch the round records (the fencing rule).
    const mayRecord = !this.cluster || this.cluster.lock.isLeader;
    if (this.store && this.experimentId !== '' && mayRecord) {
      await bounded(
        this.store
          .abortInterruptedRounds(this.experimentId, this.interruptReason)
          .catch((error: unknown) =>
            this.log.warn(`could not record the interrupted round: ${errorMessage(error)}`),
          ),
      );
    }
    await this.cluster?.close();
    if (this.ownsStore && this.store) await bounded(this.store.close());
    await this.unmaskPool.close();
    this.evalModel.dispose();
  }
}

/**
 * Waits for `promise` to settle, at most `ms`; never rejects. For best-effort calls on a
 * database that has just failed, which may hang instead of failing again.
 */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.catch(() => undefined),
    new Promise<void>((resolve) => {
      // Not unref'd: a hung promise holds no handle, so the process would exit mid-await.
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** The TLS certificate and key named by the config, read at start-up; null without TLS. */
function readTlsFiles(config: CoordinatorConfig): { cert: Buffer; key: Buffer } | null {
  if (config.tlsCert === undefined || config.tlsKey === undefined) return null;
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new CohortError(
        'CONFIG_INVALID',
        `cannot read TLS ${what} ${path}: ${errorMessage(error)}`,
      );
    }
  };
  const tls = { cert: read(config.tlsCert, 'certificate'), key: read(config.tlsKey, 'key') };
  try {
    createSecureContext(tls);
  } catch (error) {
    throw new CohortError(
      'CONFIG_INVALID',
      `--tls-cert ${config.tlsCert} and --tls-key ${config.tlsKey} are not a usable PEM pair: ${errorMessage(error)}`,
    );
  }
  return tls;
}
