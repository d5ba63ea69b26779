import { randomBytes } from 'node:crypto';
import { EventEmitter, setMaxListeners } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { Server } from 'socket.io';
import { StreamingWeightedMean } from '../shared/aggregation/streaming-weighted-mean';
import type { Dataset } from '../shared/data/dataset';
import { CohortError } from '../shared/errors';
import type { ErrorCode } from '../shared/errors';
import { MIN_THRESHOLD, chooseSecAggParams } from '../shared/secagg';
import { buildModel } from '../shared/model/build-model';
import { getModelSpec } from '../shared/model/registry';
import { specHash } from '../shared/model/spec-hash';
import type { ClientToServerEvents, ServerToClientEvents } from '../shared/protocol/events';
import type { FitConfigMessage, ModelPayload } from '../shared/protocol/messages';
import { createStrategy } from '../shared/strategies/create-strategy';
import type { Strategy } from '../shared/strategies/strategy';
import { evaluateModel } from '../shared/training/local-train';
import type { WeightManifest } from '../shared/weights/codec';
import {
  applyWeights,
  assertFinite,
  bytesToFloats,
  extractWeights,
  floatsToBytes,
  hashWeights,
} from '../shared/weights/codec';
import type { ConnectedClient } from './client-registry';
import { ClientRegistry } from './client-registry';
import type { CoordinatorConfig, CoordinatorConfigInput } from './config';
import { resolveCoordinatorConfig } from './config';
import { runEvaluatePhase } from './evaluate-phase';
import { exportModel } from './export-model';
import type { AcceptedFit, Participation } from './fit-phase';
import { runFitPhase } from './fit-phase';
import { runSecureAggregation } from './secure-aggregation-phase';
import type { RoundHistoryEntry, RunHistory } from './history';
import type { Logger } from './logger';
import { debugLogger } from './logger';
import type { CohortStore } from './persistence/store';
import { openStore, redactDatabaseUrl } from './persistence/store';
import { cohortTarget, selectCohort } from './selection';

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
  /** Attaches listeners before start-up, so 'listening' and 'resumed' are not missed. */
  observe?(coordinator: Coordinator): void;
}

interface GlobalModel {
  manifest: WeightManifest;
  weights: Float32Array;
  hash: string;
  strategyState: Float32Array;
}

/**
 * A running coordinator: owns the socket.io server, the round loop, the store. `done`
 * resolves with the run history after the last round (or rejects on a fatal error);
 * `stop()` ends everything and is safe to call at any time.
 */
export class Coordinator extends EventEmitter<CoordinatorEvents> {
  readonly config: CoordinatorConfig;
  private readonly log: Logger;
  private readonly httpServer = createServer();
  private readonly io: Server<ClientToServerEvents, ServerToClientEvents>;
  private registry!: ClientRegistry;
  private store!: CohortStore;
  private ownsStore = true;
  private readonly strategy: Strategy;
  private readonly evalModel: tf.LayersModel;
  private readonly testSet: Dataset | null;
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
    this.testSet = deps.testSet ?? null;
    if (deps.store) {
      this.store = deps.store;
      this.ownsStore = false;
    }
    const spec = getModelSpec(config.task);
    this.evalModel = buildModel(spec, config.seed);
    const modelBytes = extractWeights(this.evalModel).manifest.length * 4;
    this.io = new Server(this.httpServer, {
      maxHttpBufferSize: config.maxMessageBytes ?? Math.ceil(modelBytes * 1.25) + 1_000_000,
      cors: { origin: '*' },
      pingTimeout: 60_000,
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
    return `http://${host}:${this.port}`;
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
      },
    });
    this.experimentId = opened.experimentId;
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
      database: redactDatabaseUrl(config.database),
    };
    this.registry = new ClientRegistry(this.io, {
      coordinatorId: randomBytes(8).toString('hex'),
      task: config.task,
      modelSpecHash,
      experiment: config.experiment!,
      secureAggregation: config.secureAggregation,
      log: this.log,
      onRegister: (client) =>
        this.store.upsertClient({
          id: client.id,
          publicKey: Buffer.from(client.publicKey).toString('hex'),
          ...(client.info.displayName !== undefined
            ? { displayName: client.info.displayName }
            : {}),
          seenAt: new Date(),
        }),
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
      const { entry, next } = await this.runRound(round, global);
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
    this.io.emit('done', {
      reason: 'experiment complete',
      rounds: this.config.rounds,
      finalAccuracy: last?.testAccuracy ?? null,
    });
    this.emit('finished', this.history);
    return this.history;
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

  private fitConfig(round: number): FitConfigMessage {
    const c = this.config;
    const base = {
      epochs: c.epochs,
      batchSize: c.batchSize,
      learningRate: c.learningRate,
      optimizer: c.optimizer,
      proximalMu: 0,
    };
    const configured = this.strategy.configureFit(base, round);
    return { ...configured, seed: (c.seed + round) >>> 0, maxExamples: c.maxExamples };
  }

  private async runRound(
    round: number,
    global: GlobalModel,
  ): Promise<{ entry: RoundHistoryEntry; next: GlobalModel }> {
    const started = Date.now();
    const roundId = `${this.experimentId.slice(0, 12)}-r${round}-${randomBytes(4).toString('hex')}`;
    const clients = this.registry.list();
    const target = cohortTarget(clients.length, this.config);
    const selectedIds = selectCohort(
      clients.map((c) => c.id),
      target,
      this.config.overSelection,
      this.config.seed,
      round,
    );
    const cohort = selectedIds
      .map((id) => this.registry.get(id))
      .filter((c): c is ConnectedClient => c !== undefined);
    const bytesBefore = new Map(cohort.map((c) => [c.id, c.bytesReceived()]));
    this.emit('round-start', { round, selected: cohort.length, target });
    const secure = this.config.secureAggregation;
    const model: ModelPayload = {
      modelHash: global.hash,
      manifest: global.manifest,
      weights: floatsToBytes(global.weights),
    };
    const mean = new StreamingWeightedMean(global.manifest.length);

    const fit = await runFitPhase({
      round,
      roundId,
      cohort,
      target,
      model,
      config: this.fitConfig(round),
      secure,
      deadlineMs: this.config.roundTimeoutMs,
      log: this.log,
      signal: this.shutdown.signal,
      accept: (res: AcceptedFit) => {
        if (secure) return;
        const delta = bytesToFloats(res.update!);
        if (delta.length !== global.manifest.length) {
          throw new CohortError(
            'UPDATE_SHAPE',
            `update has ${delta.length} values, model has ${global.manifest.length}`,
          );
        }
        assertFinite(delta);
        // The same weight cap as secure mode, so one client's claimed size cannot dominate.
        mean.add(delta, Math.min(res.numExamples, this.config.weightCap));
      },
      onProgress: (clientId, fraction) =>
        this.emit('client-progress', { round, clientId, fraction }),
    });

    const participations = fit.participations;
    let contributors = fit.accepted;
    let meanDelta: Float32Array | null = null;
    let failure: { code: ErrorCode; reason: string } | null = null;
    if (fit.accepted.length === 0) {
      failure = { code: 'ROUND_ABORTED', reason: 'no client completed training' };
    } else if (!secure) {
      meanDelta = mean.mean();
    } else {
      const outcome = await this.secureAggregate(round, roundId, global, fit.accepted);
      for (const [clientId, code] of outcome.lost) {
        const dropped = code === 'CLIENT_DROPPED' || code === 'ROUND_DEADLINE';
        participations.set(clientId, {
          clientId,
          status: dropped ? 'dropped' : 'rejected',
          numExamples: 0,
          errorCode: code,
        });
      }
      if (outcome.result) {
        const survivors = new Set(outcome.result.survivors);
        for (const f of fit.accepted) {
          if (
            !survivors.has(f.client.id) &&
            participations.get(f.client.id)?.status === 'completed'
          ) {
            participations.set(f.client.id, {
              clientId: f.client.id,
              status: 'dropped',
              numExamples: 0,
              errorCode: 'CLIENT_DROPPED',
            });
          }
        }
        contributors = fit.accepted.filter((f) => survivors.has(f.client.id));
        meanDelta = outcome.result.weightedMean;
      } else {
        failure = outcome.failure ?? { code: 'ROUND_ABORTED', reason: 'secure aggregation failed' };
        contributors = [];
      }
    }

    let next = global;
    if (meanDelta) {
      const { weights, state } = this.strategy.aggregateFit(
        { global: global.weights, meanDelta, round },
        global.strategyState,
      );
      assertFinite(weights, 'aggregated model');
      next = {
        manifest: global.manifest,
        weights,
        strategyState: state,
        hash: await hashWeights(global.manifest, weights),
      };
    }
    const status: 'completed' | 'failed' = failure ? 'failed' : 'completed';
    const list = [...participations.values()];
    const counts = countParticipations(list, cohort.length);
    const participants = status === 'completed' ? contributors.length : 0;
    const evaluation =
      status === 'completed'
        ? await this.evaluate(
            round,
            roundId,
            next,
            contributors.map((f) => f.client),
          )
        : null;
    const bytesReceived = cohort.reduce(
      (sum, c) => sum + c.bytesReceived() - (bytesBefore.get(c.id) ?? 0),
      0,
    );
    const entry: RoundHistoryEntry = {
      round,
      status,
      participants,
      dropped: counts.dropped,
      rejected: counts.rejected,
      selected: cohort.length,
      trainLoss: status === 'completed' ? weightedLoss(contributors) : null,
      testLoss: evaluation?.loss ?? null,
      testAccuracy: evaluation?.accuracy ?? null,
      evaluation: evaluation?.source ?? 'none',
      federatedAccuracy: evaluation?.federatedAccuracy ?? null,
      durationMs: Date.now() - started,
      bytesReceived,
      secureAggregation: secure ? 'on' : 'off',
      failureReason: failure ? `${failure.code}: ${failure.reason}` : null,
    };
    if (this.stopped)
      throw new CohortError('INTERNAL', `coordinator stopped during round ${round}`);
    await this.store.recordRound({
      experimentId: this.experimentId,
      number: round,
      status,
      failureReason: failure?.reason ?? null,
      failureCode: failure?.code ?? null,
      secureAggregation: secure,
      startedAt: new Date(started),
      finishedAt: new Date(),
      durationMs: entry.durationMs,
      participants,
      dropped: entry.dropped,
      bytesReceived,
      trainLoss: entry.trainLoss,
      testLoss: entry.testLoss,
      testAccuracy: entry.testAccuracy,
      participations: list,
      metrics: metricsOf(entry),
      checkpoint:
        status === 'completed'
          ? {
              weights: floatsToBytes(next.weights),
              strategyState: floatsToBytes(next.strategyState),
              modelHash: next.hash,
            }
          : null,
    });
    return { entry, next };
  }

  /** Runs the secure phases among the clients that trained; the coordinator sees only the mean. */
  private async secureAggregate(
    round: number,
    roundId: string,
    global: GlobalModel,
    accepted: AcceptedFit[],
  ) {
    if (accepted.length < MIN_THRESHOLD) {
      return {
        result: null,
        failure: {
          code: 'SECAGG_BELOW_THRESHOLD' as const,
          reason: `${accepted.length} clients finished training; secure aggregation needs at least ${MIN_THRESHOLD}`,
        },
        lost: new Map<string, ErrorCode>(),
      };
    }
    const config = chooseSecAggParams(accepted.length, {
      vectorLength: global.manifest.length,
      clipRange: this.config.clipRange,
      weightCap: this.config.weightCap,
    });
    return runSecureAggregation({
      round,
      roundId,
      modelHash: global.hash,
      clients: accepted.map((f) => f.client),
      config,
      phaseTimeoutMs: this.config.phaseTimeoutMs,
      log: this.log,
      signal: this.shutdown.signal,
    });
  }

  private async evaluate(
    round: number,
    roundId: string,
    model: GlobalModel,
    clients: ConnectedClient[],
  ): Promise<{
    loss: number | null;
    accuracy: number | null;
    source: 'centralized' | 'federated';
    federatedAccuracy: number | null;
  } | null> {
    const mode =
      this.config.evaluation === 'auto'
        ? this.testSet
          ? 'centralized'
          : 'federated'
        : this.config.evaluation;
    if (mode === 'none') return null;
    let central: { loss: number; accuracy: number } | null = null;
    let federated: { loss: number; accuracy: number } | null = null;
    if ((mode === 'centralized' || mode === 'both') && this.testSet) {
      applyWeights(this.evalModel, model.manifest, model.weights);
      central = await evaluateModel(this.evalModel, this.testSet, 256);
    }
    if (mode === 'federated' || mode === 'both') {
      federated = await runEvaluatePhase({
        round,
        roundId,
        clients,
        model: {
          modelHash: model.hash,
          manifest: model.manifest,
          weights: floatsToBytes(model.weights),
        },
        batchSize: 256,
        deadlineMs: this.config.evaluateTimeoutMs,
        log: this.log,
      });
    }
    const primary = central ?? federated;
    if (!primary) return null;
    return {
      loss: primary.loss,
      accuracy: primary.accuracy,
      source: central ? 'centralized' : 'federated',
      federatedAccuracy: federated?.accuracy ?? null,
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
    if (this.ownsStore && this.store) await this.store.close();
    this.evalModel.dispose();
  }
}

function countParticipations(list: readonly Participation[], selected: number) {
  const completed = list.filter((p) => p.status === 'completed').length;
  const rejected = list.filter((p) => p.status === 'rejected').length;
  return { completed, rejected, dropped: selected - completed - rejected };
}

function weightedLoss(accepted: AcceptedFit[]): number | null {
  const total = accepted.reduce((s, f) => s + f.numExamples, 0);
  if (total === 0) return null;
  return accepted.reduce((s, f) => s + f.trainLoss * f.numExamples, 0) / total;
}

function metricsOf(entry: RoundHistoryEntry): Record<string, number> {
  const metrics: Record<string, number> = { selected: entry.selected, rejected: entry.rejected };
  if (entry.trainLoss !== null) metrics.train_loss = entry.trainLoss;
  if (entry.testLoss !== null) metrics.test_loss = entry.testLoss;
  if (entry.testAccuracy !== null) metrics.test_accuracy = entry.testAccuracy;
  if (entry.federatedAccuracy !== null) metrics.federated_accuracy = entry.federatedAccuracy;
  return metrics;
}
