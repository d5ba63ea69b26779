import { EventEmitter, setMaxListeners } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { createServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { Server } from 'socket.io';
import type { Dataset } from '../shared/data/dataset';
import { toHex } from '../shared/bytes';
import { CohortError, errorMessage } from '../shared/errors';
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
import type { RunHistory, RoundHistoryEntry } from './history';
import type { Logger } from './logger';
import { debugLogger } from './logger';
import type { CohortStore } from './persistence/store';
import { openStore, redactDatabaseUrl } from './persistence/store';
import type { GlobalModel, RoundContext } from './round-runner';
import { runRound } from './round-runner';
import { guardConnections } from './connection-guard';
import type { EnrollmentPolicy } from './enrollment';
import { loadEnrollmentPolicy } from './enrollment';

/** How long the coordinator waits for clients to acknowledge the end of the run. */
const DONE_ACK_TIMEOUT_MS = 2_000;

/** Events for progress output; the CLI renders them, tests may assert on them. */
export interface CoordinatorEvents {
  listening: [{ url: string; port: number }];
  waiting: [{ round: number; connected: number; needed: number }];
  'client-joined': [{ clientId: string; backend: string; platform: string; connected: number }];
  'client-left': [{ clientId: string; reason: string; connected: number }];
  'round-start': [{ round: number; selected: number; target: number }];
  'client-progress': [{ round: number; clientId: string; fraction: number }];
  'round-end': [RoundHistoryEntry];
  resumed: [{ round: number }];
  finished: [RunHistory];
}

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
    this.httpServer = tls ? createHttpsServer(tls) : createServer();
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
    });
    guardConnections(this.io, config, this.log);
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
      this.store = await openStore(config.database, { log: (l) => this.log.info(l) });
    const opened = await this.store.openExperiment({
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
        // A secret: never in the database (nor in a log line).
        joinToken: undefined,
      },
    });
    this.experimentId = opened.experimentId;
    const interrupted = await this.store.abortInterruptedRounds(
      this.experimentId,
      'the coordinator ended during this round (killed or crashed) before recording it',
    );
    for (const round of interrupted) {
      this.log.warn(
        `round ${round} was interrupted when the last coordinator ended: recorded as aborted`,
      );
    }
    const global = await this.initialModel(opened.lastCompletedRound);
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
    this.registry = new ClientRegistry(this.io, {
      identity: this.identity,
      task: config.task,
      modelSpecHash,
      experiment: config.experiment!,
      secureAggregation: config.secureAggregation,
      registerTimeoutMs: config.registerTimeoutMs,
      log: this.log,
      enrollment: this.givenEnrollment ?? (await loadEnrollmentPolicy(config, this.log)),
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
    this.registry.on('registered', (client) =>
      this.emit('client-joined', {
        clientId: client.id,
        backend: client.info.backend,
        platform: client.info.platform,
        connected: this.registry.size,
      }),
    );
    this.registry.on('left', (clientId, reason) =>
      this.emit('client-left', { clientId, reason, connected: this.registry.size }),
    );
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
    if (opened.lastCompletedRound > 0) this.emit('resumed', { round: opened.lastCompletedRound });
    this.running = this.run(global, opened.lastCompletedRound);
    // The caller observes `done`; this guard keeps an early stop from surfacing as unhandled.
    this.running.catch(() => undefined);
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
    for (
      let round = lastCompletedRound + 1;
      round <= this.config.rounds && !this.stopped;
      round++
    ) {
      const ready = await this.waitForClients(round);
      if (!ready && !this.stopped) {
        throw new CohortError(
          'ROUND_ABORTED',
          `gave up waiting for ${this.config.minClients} clients before round ${round}`,
        );
      }
      if (!ready) break;
      const { entry, next } = await runRound(this.roundContext(), round, global);
      global = next;
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
      throw new CohortError('INTERNAL', 'coordinator stopped before the last round');
    if (this.config.exportDir) {
      applyWeights(this.evalModel, global.manifest, global.weights);
      this.history.modelExportedTo = await exportModel(this.evalModel, this.config.exportDir);
    }
    this.history.finishedAt = new Date().toISOString();
    await this.writeHistory();
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
   * Tells every connected client that the run is over and waits, at most DONE_ACK_TIMEOUT_MS,
   * for each to acknowledge: a coordinator stopped right after (the CLI's exit) would
   * otherwise discard the message still in flight, and its clients would wait forever.
   */
  private async announceDone(message: DoneMessage): Promise<void> {
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
    if (this.registry.size >= needed) return true;
    this.emit('waiting', { round, connected: this.registry.size, needed });
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (value: boolean) => {
        this.registry.off('registered', check);
        if (timer) clearTimeout(timer);
        this.stopWaiters = this.stopWaiters.filter((w) => w !== onStop);
        resolve(value);
      };
      const check = () => {
        if (this.registry.size >= needed) finish(true);
      };
      const onStop = () => finish(false);
      this.stopWaiters.push(onStop);
      this.registry.on('registered', check);
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
      registry: this.registry,
      store: this.store,
      strategy: this.strategy,
      evaluator: this.evaluator,
      experimentId: this.experimentId,
      experiment: this.config.experiment!,
      coordinatorId: this.coordinatorId,
      log: this.log,
      signal: this.shutdown.signal,
      isStopped: () => this.stopped,
      onRoundStart: (info) => this.emit('round-start', info),
      onProgress: (round, clientId, fraction) =>
        this.emit('client-progress', { round, clientId, fraction }),
    };
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
    this.shutdown.abort();
    for (const waiter of [...this.stopWaiters]) waiter();
    this.io.disconnectSockets(true);
    await new Promise<void>((resolve) => {
      void this.io.close(() => resolve());
    });
    // Let the round in flight unwind (it sees `stopped` and records nothing) before closing.
    if (this.running) await this.running.catch(() => undefined);
    if (this.store && this.experimentId !== '') {
      await this.store
        .abortInterruptedRounds(this.experimentId, 'the coordinator stopped during this round')
        .catch((error: unknown) =>
          this.log.warn(`could not record the interrupted round: ${errorMessage(error)}`),
        );
    }
    if (this.ownsStore && this.store) await this.store.close();
    this.evalModel.dispose();
  }
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
