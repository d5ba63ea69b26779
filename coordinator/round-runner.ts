import { randomBytes } from 'node:crypto';
import { StreamingWeightedMean } from '../shared/aggregation/streaming-weighted-mean';
import { z } from 'zod';
import { CohortError, isCohortError } from '../shared/errors';
import type { ErrorCode } from '../shared/errors';
import type { FitConfigMessage, ModelPayload } from '../shared/protocol/messages';
import type { MaskRemover } from '../shared/secagg';
import { MIN_THRESHOLD, chooseSecAggParams } from '../shared/secagg';
import type { Strategy } from '../shared/strategies/strategy';
import type { WeightManifest } from '../shared/weights/codec';
import { bytesToFloats, floatsToBytes, hashWeights } from '../shared/weights/codec';
import type { RoundClient } from './client-registry';
import { isRemoteClient } from './cluster/remote-clients';
import type { CoordinatorConfig } from './config';
import { secureModulusBits } from './config';
import type { GlobalModelEvaluator } from './evaluation';
import type { AcceptedFit, Participation } from './fit-phase';
import { runFitPhase } from './fit-phase';
import type { RoundHistoryEntry } from './history';
import type { Logger } from './logger';
import type { CohortStore } from './persistence/store';
import type { PartialSumSource, SecureAggregationOutcome } from './secure-aggregation-phase';
import { runSecureAggregation } from './secure-aggregation-phase';
import { cohortTarget, selectCohort } from './selection';

/** The global model between rounds: weights, their hash, and the server optimizer's state. */
export interface GlobalModel {
  manifest: WeightManifest;
  weights: Float32Array;
  hash: string;
  strategyState: Float32Array;
}

/** Everything one round needs from the coordinator that runs it. */
export interface RoundContext {
  config: CoordinatorConfig;
  /** Every registered client that may be selected: this process's and, in a cluster, the others'. */
  clients(): Promise<RoundClient[]>;
  store: CohortStore;
  strategy: Strategy;
  evaluator: GlobalModelEvaluator;
  experimentId: string;
  /** The experiment's name, exactly as registration answers tell it to clients. */
  experiment: string;
  /** The id of this coordinator, exactly as its challenges tell it to clients. */
  coordinatorId: string;
  log: Logger;
  /** Aborts the round in flight when the coordinator stops. */
  signal: AbortSignal;
  isStopped(): boolean;
  onRoundStart(info: { round: number; selected: number; target: number }): void;
  onProgress(round: number, clientId: string, fraction: number): void;
  /** The round entered a phase: 'training', each secure-aggregation phase, 'evaluating'. */
  onPhase(round: number, phase: string): void;
  /** Where secure rounds remove their masks (the coordinator's worker pool). */
  removeMasks?: MaskRemover;
  /** Cluster mode: the other processes' partial sums of their clients' masked inputs. */
  partials?: PartialSumSource;
  /** Cluster mode: the fencing check before a round is recorded (throws LEADERSHIP_LOST). */
  assertLeader?(): Promise<void>;
}

/** The local fit config of a round: the base options, adjusted by the strategy (FedProx's mu). */
function fitConfig(ctx: RoundContext, round: number): FitConfigMessage {
  const c = ctx.config;
  const base = {
    epochs: c.epochs,
    batchSize: c.batchSize,
    learningRate: c.learningRate,
    optimizer: c.optimizer,
    proximalMu: 0,
  };
  const configured = ctx.strategy.configureFit(base, round);
  return { ...configured, seed: (c.seed + round) >>> 0, maxExamples: c.maxExamples };
}

/**
 * One federated round, start to finish: select the cohort, fit (plain or secure), aggregate
 * with the strategy, evaluate, and persist the round before it is announced. Returns the
 * history line and the next global model (the same model when the round failed).
 */
export async function runRound(
  ctx: RoundContext,
  round: number,
  global: GlobalModel,
): Promise<{ entry: RoundHistoryEntry; next: GlobalModel }> {
  const started = Date.now();
  const roundId = `${ctx.experimentId.slice(0, 12)}-r${round}-${randomBytes(4).toString('hex')}`;
  const clients = new Map((await ctx.clients()).map((c) => [c.id, c]));
  const target = cohortTarget(clients.size, ctx.config);
  const cohort = selectCohort(
    [...clients.keys()],
    target,
    ctx.config.overSelection,
    ctx.config.seed,
    round,
  ).map((id) => clients.get(id)!);
  const bytesBefore = new Map(cohort.map((c) => [c.id, c.bytesReceived()]));
  const secure = ctx.config.secureAggregation;
  await ctx.store.beginRound({
    experimentId: ctx.experimentId,
    number: round,
    secureAggregation: secure,
    startedAt: new Date(started),
  });
  ctx.onRoundStart({ round, selected: cohort.length, target });
  ctx.onPhase(round, 'training');
  const model: ModelPayload = {
    modelHash: global.hash,
    manifest: global.manifest,
    weights: floatsToBytes(global.weights),
  };
  const mean = new StreamingWeightedMean(global.manifest.length);
  /** Cluster mode, plain rounds: the accepted clients of each gateway, with their weights. */
  const held = new Map<string, Array<{ clientId: string; weight: number }>>();

  const fit = await runFitPhase({
    round,
    roundId,
    cohort,
    target,
    model,
    config: fitConfig(ctx, round),
    secure,
    deadlineMs: ctx.config.roundTimeoutMs,
    log: ctx.log,
    signal: ctx.signal,
    accept: (res: AcceptedFit) => {
      if (secure) return;
      // The same weight cap as secure mode, so one client's claimed size cannot dominate.
      const weight = Math.min(res.numExamples!, ctx.config.weightCap);
      if (isRemoteClient(res.client)) {
        // Its gateway holds the (checked) update; it sends their weighted mean once fit ends.
        const list = held.get(res.client.gateway) ?? [];
        list.push({ clientId: res.client.id, weight });
        held.set(res.client.gateway, list);
        return;
      }
      // add() refuses a wrong length or a non-finite value (UPDATE_SHAPE, UPDATE_NON_FINITE).
      mean.add(bytesToFloats(res.update!), weight);
    },
    onProgress: (clientId, fraction) => ctx.onProgress(round, clientId, fraction),
  });

  const participations = fit.participations;
  const lostGateways = await foldHeldUpdates(ctx, roundId, held, mean);
  for (const [clientId, code] of lostGateways) {
    participations.set(clientId, { clientId, status: 'dropped', numExamples: 0, errorCode: code });
  }
  let contributors = fit.accepted.filter((f) => !lostGateways.has(f.client.id));
  let meanDelta: Float32Array | null = null;
  /** Secure mode: the example-weighted mean train loss, decoded from the masked sum. */
  let secureTrainLoss: number | null = null;
  let failure: { code: ErrorCode; reason: string } | null = null;
  if (contributors.length === 0) {
    failure = { code: 'ROUND_ABORTED', reason: 'no client completed training' };
  } else if (!secure) {
    meanDelta = mean.mean();
    mean.release(); // its wasm memory goes to the next round's mean (no first-touch faults)
  } else {
    const outcome = await secureAggregate(ctx, round, roundId, global, contributors);
    const survivors = new Set(outcome.result?.survivors);
    // Every client the secure phases did not sum is in `lost`, with the reason.
    for (const [clientId, code] of outcome.lost) {
      // Lost after its masked input was summed: its update is in the mean, so it completed.
      if (survivors.has(clientId)) continue;
      const dropped = code === 'CLIENT_DROPPED' || code === 'ROUND_DEADLINE';
      participations.set(clientId, {
        clientId,
        status: dropped ? 'dropped' : 'rejected',
        numExamples: 0,
        errorCode: code,
      });
    }
    if (outcome.result) {
      contributors = contributors.filter((f) => survivors.has(f.client.id));
      meanDelta = outcome.result.weightedMean;
      secureTrainLoss = outcome.result.meanTrainLoss;
    } else {
      failure = outcome.failure;
      contributors = [];
    }
  }

  let next = global;
  if (meanDelta) {
    const { weights, state } = ctx.strategy.aggregateFit(
      { global: global.weights, meanDelta, round },
      global.strategyState,
    );
    const bad = firstNonFinite(weights);
    if (bad === -1) {
      next = {
        manifest: global.manifest,
        weights,
        strategyState: state,
        hash: await hashWeights(global.manifest, weights),
      };
    } else {
      // Finite updates can still overflow float32 once applied (huge plain deltas, a large
      // server learning rate): the round fails and the model stays as it was.
      failure = {
        code: 'UPDATE_NON_FINITE',
        reason: `the aggregated model has ${weights[bad]} at index ${bad}; the round is not applied`,
      };
      contributors = [];
      secureTrainLoss = null;
    }
  }
  const status: 'completed' | 'failed' = failure ? 'failed' : 'completed';
  const list = [...participations.values()];
  const counts = countParticipations(list, cohort.length);
  // A failed round has no contributors: nothing of theirs was applied.
  const participants = contributors.length;
  if (status === 'completed') ctx.onPhase(round, 'evaluating');
  const evaluation =
    status === 'completed'
      ? await ctx.evaluator.evaluate(
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
    trainLoss: secure ? secureTrainLoss : weightedLoss(contributors),
    testLoss: evaluation?.loss ?? null,
    testAccuracy: evaluation?.accuracy ?? null,
    evaluation: evaluation?.source ?? 'none',
    federatedAccuracy: evaluation?.federatedAccuracy ?? null,
    durationMs: Date.now() - started,
    bytesReceived,
    secureAggregation: secure ? 'on' : 'off',
    failureReason: failure ? `${failure.code}: ${failure.reason}` : null,
  };
  if (ctx.isStopped())
    throw new CohortError('INTERNAL', `coordinator stopped during round ${round}`);
  await ctx.assertLeader?.();
  await ctx.store.recordRound({
    experimentId: ctx.experimentId,
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

const heldMeanSchema = z.strictObject({
  roundId: z.string(),
  mean: z.instanceof(Uint8Array),
  weight: z.number().positive(),
});

/**
 * Cluster mode, plain rounds: folds each gateway's weighted mean of the updates it holds for
 * the accepted clients. A gateway that does not answer, or answers for another total weight,
 * costs only its own clients (returned, with the reason, as dropouts).
 */
async function foldHeldUpdates(
  ctx: RoundContext,
  roundId: string,
  held: ReadonlyMap<string, ReadonlyArray<{ clientId: string; weight: number }>>,
  mean: StreamingWeightedMean,
): Promise<Map<string, ErrorCode>> {
  const lost = new Map<string, ErrorCode>();
  if (held.size === 0 || !ctx.partials) return lost;
  const partials = ctx.partials;
  const answers = await Promise.all(
    [...held].map(async ([gateway, weights]) => {
      try {
        const res = heldMeanSchema.parse(await partials.heldMean(gateway, roundId, weights));
        const expected = weights.reduce((sum, w) => sum + w.weight, 0);
        if (res.roundId !== roundId || Math.abs(res.weight - expected) > 1e-9 * expected) {
          throw new CohortError('MESSAGE_INVALID', `gateway answered for weight ${res.weight}`);
        }
        return { gateway, weights, res };
      } catch (error) {
        ctx.log.warn(
          `${roundId}: no held updates from gateway ${gateway.slice(0, 8)}: ${String(error)}`,
        );
        for (const w of weights) lost.set(w.clientId, 'CLIENT_DROPPED');
        return null;
      }
    }),
  );
  // Folded in a fixed order (not arrival order), so a rerun gives the same float sum.
  for (const answer of answers
    .filter((a) => a !== null)
    .sort((a, b) => (a.gateway < b.gateway ? -1 : 1))) {
    try {
      mean.add(bytesToFloats(answer.res.mean), answer.res.weight);
    } catch (error) {
      ctx.log.warn(`${roundId}: gateway ${answer.gateway.slice(0, 8)}: ${String(error)}`);
      for (const w of answer.weights)
        lost.set(w.clientId, isCohortError(error) ? error.code : 'INTERNAL');
    }
  }
  partials.discard(roundId);
  return lost;
}

/** Runs the secure phases among the clients that trained; the coordinator sees only the mean. */
async function secureAggregate(
  ctx: RoundContext,
  round: number,
  roundId: string,
  global: GlobalModel,
  accepted: AcceptedFit[],
): Promise<SecureAggregationOutcome> {
  if (accepted.length < MIN_THRESHOLD) {
    return {
      result: null,
      failure: {
        code: 'SECAGG_BELOW_THRESHOLD',
        reason: `${accepted.length} clients finished training; secure aggregation needs at least ${MIN_THRESHOLD}`,
      },
      lost: new Map(),
    };
  }
  const config = chooseSecAggParams(accepted.length, {
    vectorLength: global.manifest.length,
    clipRange: ctx.config.clipRange,
    weightCap: ctx.config.weightCap,
    modulusBits: secureModulusBits(ctx.config),
  });
  return runSecureAggregation({
    round,
    roundId,
    experiment: ctx.experiment,
    coordinatorId: ctx.coordinatorId,
    modelHash: global.hash,
    clients: accepted.map((f) => f.client),
    config,
    phaseTimeoutMs: ctx.config.phaseTimeoutMs,
    log: ctx.log,
    signal: ctx.signal,
    onPhase: (phase) => ctx.onPhase(round, phase),
    ...(ctx.removeMasks ? { removeMasks: ctx.removeMasks } : {}),
    ...(ctx.partials ? { partials: ctx.partials } : {}),
  });
}

function countParticipations(list: readonly Participation[], selected: number) {
  const completed = list.filter((p) => p.status === 'completed').length;
  const rejected = list.filter((p) => p.status === 'rejected').length;
  return { completed, rejected, dropped: selected - completed - rejected };
}

/** The index of the first NaN or infinite value, or -1. */
function firstNonFinite(values: Float32Array): number {
  return values.findIndex((v) => !Number.isFinite(v));
}

/** Plain mode: the example-weighted mean of the train losses the clients reported (null: none). */
function weightedLoss(accepted: AcceptedFit[]): number | null {
  const total = accepted.reduce((s, f) => s + (f.numExamples ?? 0), 0);
  if (total === 0) return null;
  return accepted.reduce((s, f) => s + (f.trainLoss ?? 0) * (f.numExamples ?? 0), 0) / total;
}

function metricsOf(entry: RoundHistoryEntry): Record<string, number> {
  const metrics: Record<string, number> = { selected: entry.selected, rejected: entry.rejected };
  if (entry.trainLoss !== null) metrics.train_loss = entry.trainLoss;
  if (entry.testLoss !== null) metrics.test_loss = entry.testLoss;
  if (entry.testAccuracy !== null) metrics.test_accuracy = entry.testAccuracy;
  if (entry.federatedAccuracy !== null) metrics.federated_accuracy = entry.federatedAccuracy;
  return metrics;
}
