/**
 * Local training and evaluation with a hand-written loop rather than `model.fit`: the loop
 * controls the shuffle seed, adds the FedProx proximal term, reports progress per batch,
 * yields to the event loop so sockets stay alive, and can stop when a round is cancelled.
 */
import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../data/dataset';
import { CohortError } from '../errors';
import { createRng } from '../random';
import type { FitConfig } from '../strategies/strategy';
import { checkDatasetFitsModel, makeBatch } from './batches';
import type { GradientHelpers } from './gradient-helpers';
import { splitBatch } from './gradient-helpers';
import { yieldToEventLoop } from './yield-to-event-loop';

/** Per-batch progress, reported after each optimizer step. */
export interface BatchProgress {
  /** 0-based epoch. */
  epoch: number;
  /** 0-based batch within the epoch. */
  batch: number;
  /** Batches per epoch. */
  batches: number;
  /** Cross-entropy of this batch before the step. */
  loss: number;
}

/** Optional callbacks into the training loop. */
export interface TrainingHooks {
  /** Awaited after every step, so a slow consumer applies back-pressure. */
  onBatch?(progress: BatchProgress): void | Promise<void>;
  /** Checked before every step; returning true ends training with TRAINING_FAILED (stopped). */
  shouldStop?(): boolean;
  /**
   * Other threads that compute parts of each step's gradient (data parallelism): the same
   * full-batch step, spread over cores, used when the first steps measure it faster (see
   * StepRace). Without them every step runs on this thread.
   */
  helpers?: GradientHelpers;
}

/** Outcome of local training. */
export interface LocalTrainResult {
  /** Mean cross-entropy per example over the last epoch (without the proximal term). */
  loss: number;
  /** Examples per epoch: the weight of this client's update in FedAvg. */
  numExamples: number;
  /** Optimizer steps taken. */
  steps: number;
}

/** Outcome of an evaluation. */
export interface EvaluationResult {
  /** Mean cross-entropy per example. */
  loss: number;
  /** Fraction of examples whose arg-max logit is the label. */
  accuracy: number;
  numExamples: number;
}

/**
 * Trains `model` in place on `data`. Minimises mean softmax cross-entropy on the logits, plus
 * (mu/2)||w - w0||^2 over the trainable weights when `proximalMu` > 0 (FedProx; w0 = the
 * weights at the start of the call). Batches follow a shuffle seeded by `config.seed`, so the
 * same data, weights and seed give the same run. Throws CONFIG_INVALID for a bad config,
 * DATA_INVALID when the data do not fit the model, TRAINING_FAILED when the loss becomes
 * non-finite, when there is no data, or when `shouldStop` asks to stop. Leaks no tensors,
 * whatever the outcome.
 */
export async function trainLocally(
  model: tf.LayersModel,
  data: Dataset,
  config: FitConfig & { seed: number },
  hooks: TrainingHooks = {},
): Promise<LocalTrainResult> {
  checkFitConfig(config);
  const classes = checkDatasetFitsModel(model, data);
  if (data.count === 0) throw new CohortError('TRAINING_FAILED', 'no training examples');

  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer =
    config.optimizer === 'adam'
      ? tf.train.adam(config.learningRate)
      : tf.train.sgd(config.learningRate);
  const mu = config.proximalMu;
  const anchors = mu > 0 ? variables.map((v) => tf.keep(v.clone())) : [];
  const rng = createRng(config.seed);
  const order = Array.from({ length: data.count }, (_, i) => i);
  const batches = Math.ceil(data.count / config.batchSize);
  let steps = 0;
  let epochLoss = 0;
  const helpers = hooks.helpers !== undefined && hooks.helpers.count > 0 ? hooks.helpers : null;
  if (helpers) await helpers.begin(data);
  const race = new StepRace();

  try {
    for (let epoch = 0; epoch < config.epochs; epoch++) {
      rng.shuffle(order);
      epochLoss = 0;
      for (let batch = 0; batch < batches; batch++) {
        if (hooks.shouldStop?.() === true) {
          throw new CohortError('TRAINING_FAILED', 'training stopped on request', {
            stopped: true,
          });
        }
        const indices = order.slice(batch * config.batchSize, (batch + 1) * config.batchSize);
        const run: StepInputs = { model, optimizer, variables, anchors, mu, data, classes };
        const parallel = helpers !== null && race.next() === 'parallel';
        const started = performance.now();
        const loss = parallel
          ? await parallelStep(run, indices, helpers)
          : await step(model, optimizer, variables, anchors, mu, data, indices, classes);
        if (helpers !== null && indices.length === config.batchSize) {
          race.record(parallel ? 'parallel' : 'single', performance.now() - started);
        }
        if (!Number.isFinite(loss)) {
          throw new CohortError('TRAINING_FAILED', `loss became ${loss}: lower the learning rate`);
        }
        steps += 1;
        epochLoss += loss * indices.length;
        await hooks.onBatch?.({ epoch, batch, batches, loss });
        await yieldToEventLoop();
      }
    }
  } finally {
    optimizer.dispose();
    tf.dispose(anchors);
  }
  return { loss: epochLoss / data.count, numExamples: data.count, steps };
}

/** Steps of each kind timed before the faster is kept for the rest of the run. */
const RACE_STEPS = 3;

/**
 * Whether spreading a step over threads pays is measured, not assumed: for a small network the
 * threads' overhead and their contention for the cores (garbage collection, caches) can cost
 * more than the halved batch saves. The first full batches alternate between the parallel and
 * the single-thread step (the same mathematics either way), and the one with the lower median
 * time is kept for the rest of the run.
 */
class StepRace {
  private readonly times = { parallel: [] as number[], single: [] as number[] };
  private winner: 'parallel' | 'single' | null = null;

  next(): 'parallel' | 'single' {
    if (this.winner !== null) return this.winner;
    return this.times.parallel.length <= this.times.single.length ? 'parallel' : 'single';
  }

  record(kind: 'parallel' | 'single', ms: number): void {
    if (this.winner !== null) return;
    this.times[kind].push(ms);
    if (this.times.parallel.length >= RACE_STEPS && this.times.single.length >= RACE_STEPS) {
      this.winner = median(this.times.parallel) < median(this.times.single) ? 'parallel' : 'single';
    }
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * Mean loss and accuracy of `model` on `data`, in batches (inference mode: dropout off).
 * An empty dataset gives `{ loss: 0, accuracy: 0, numExamples: 0 }`: with zero examples the
 * metrics weigh nothing in a federated average.
 */
export async function evaluateModel(
  model: tf.LayersModel,
  data: Dataset,
  batchSize = 256,
): Promise<EvaluationResult> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new CohortError(
      'CONFIG_INVALID',
      `batch size must be a positive integer, got ${batchSize}`,
    );
  }
  const classes = checkDatasetFitsModel(model, data);
  if (data.count === 0) return { loss: 0, accuracy: 0, numExamples: 0 };
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < data.count; start += batchSize) {
    const end = Math.min(start + batchSize, data.count);
    const indices = Array.from({ length: end - start }, (_, i) => start + i);
    const { xs, ys } = makeBatch(data, indices, classes);
    const [batchLoss, batchCorrect] = tf.tidy(() => {
      const logits = model.apply(xs, { training: false }) as tf.Tensor2D;
      const loss = tf.losses.softmaxCrossEntropy(
        ys,
        logits,
        undefined,
        undefined,
        tf.Reduction.SUM,
      );
      const hits = tf.equal(tf.argMax(logits, 1), tf.argMax(ys, 1)).sum();
      return [loss, hits];
    });
    tf.dispose([xs, ys]);
    try {
      lossSum += (await batchLoss.data())[0]!;
      correct += (await batchCorrect.data())[0]!;
    } finally {
      tf.dispose([batchLoss, batchCorrect]);
    }
    await yieldToEventLoop();
  }
  return { loss: lossSum / data.count, accuracy: correct / data.count, numExamples: data.count };
}

/** One optimizer step on the examples at `indices`; returns their mean cross-entropy. */
async function step(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  variables: tf.Variable[],
  anchors: tf.Tensor[],
  mu: number,
  data: Dataset,
  indices: number[],
  classes: number,
): Promise<number> {
  const { xs, ys } = makeBatch(data, indices, classes);
  let crossEntropy: tf.Scalar | undefined;
  try {
    tf.tidy(() => {
      optimizer.minimize(
        () => {
          const logits = model.apply(xs, { training: true }) as tf.Tensor2D;
          const ce = tf.losses.softmaxCrossEntropy<tf.Tensor2D, tf.Scalar>(ys, logits);
          // A clone: minimize() disposes the returned cost, which is `ce` itself when mu = 0.
          crossEntropy = tf.keep(ce.clone());
          if (anchors.length === 0) return ce;
          const squaredDistance = tf.addN(
            variables.map((v, i) => tf.sum(tf.squaredDifference(v, anchors[i]!))),
          );
          return tf.add<tf.Scalar>(ce, tf.mul(mu / 2, squaredDistance));
        },
        false,
        variables,
      );
    });
    return crossEntropy === undefined ? Number.NaN : (await crossEntropy.data())[0]!;
  } finally {
    tf.dispose([xs, ys]);
    crossEntropy?.dispose();
  }
}

/** What one optimizer step works on. */
interface StepInputs {
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  variables: tf.Variable[];
  anchors: tf.Tensor[];
  mu: number;
  data: Dataset;
  classes: number;
}

/**
 * One optimizer step on the examples at `indices`, its gradient computed in parts: the helpers
 * sum the cross-entropy gradients of all parts but the first at the current weights while this
 * thread does the first; the sum over the batch, divided by its size, plus the proximal term's
 * gradient, is the gradient {@link step} takes. Returns the batch's mean cross-entropy.
 */
async function parallelStep(
  run: StepInputs,
  indices: number[],
  helpers: GradientHelpers,
): Promise<number> {
  const { variables, anchors, mu } = run;
  const parts = splitBatch(indices, helpers.count + 1);
  const weights = flattenValues(variables.map((v) => v.dataSync() as Float32Array));
  const remote = helpers.compute(weights, parts.slice(1));
  // The helpers run while this thread computes its part (tfjs kernels here are synchronous).
  const { xs, ys } = makeBatch(run.data, parts[0]!, run.classes);
  const batchSize = indices.length;
  let localSum: tf.Scalar | undefined;
  let grads: tf.NamedTensorMap | undefined;
  try {
    const result = tf.variableGrads(() => {
      const logits = run.model.apply(xs, { training: true }) as tf.Tensor2D;
      const ceSum = tf.losses.softmaxCrossEntropy<tf.Tensor2D, tf.Scalar>(
        ys,
        logits,
        undefined,
        undefined,
        tf.Reduction.SUM,
      );
      localSum = tf.keep(ceSum.clone());
      const ce = tf.div<tf.Scalar>(ceSum, batchSize);
      if (anchors.length === 0) return ce;
      const squaredDistance = tf.addN(
        variables.map((v, i) => tf.sum(tf.squaredDifference(v, anchors[i]!))),
      );
      return tf.add<tf.Scalar>(ce, tf.mul(mu / 2, squaredDistance));
    }, variables);
    result.value.dispose();
    grads = result.grads;
    const helped = await remote;
    const combined = grads;
    tf.tidy(() => {
      let offset = 0;
      const total: tf.NamedTensorMap = {};
      for (const v of variables) {
        const size = v.size;
        const part = helped.gradient.subarray(offset, offset + size);
        offset += size;
        total[v.name] = tf.add(combined[v.name]!, tf.tensor(part, v.shape).div(batchSize));
      }
      run.optimizer.applyGradients(total);
    });
    const local = localSum === undefined ? Number.NaN : (await localSum.data())[0]!;
    return (local + helped.lossSum) / batchSize;
  } finally {
    tf.dispose([xs, ys]);
    if (grads) tf.dispose(Object.values(grads));
    localSum?.dispose();
  }
}

/** Concatenates arrays (the trainable weights, in order) into one flat vector. */
function flattenValues(arrays: readonly Float32Array[]): Float32Array {
  let length = 0;
  for (const a of arrays) length += a.length;
  const out = new Float32Array(length);
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

function checkFitConfig(config: FitConfig & { seed: number }): void {
  const problems: string[] = [];
  if (!Number.isInteger(config.epochs) || config.epochs < 1) problems.push('epochs >= 1');
  if (!Number.isInteger(config.batchSize) || config.batchSize < 1) problems.push('batchSize >= 1');
  if (!Number.isFinite(config.learningRate) || config.learningRate <= 0) {
    problems.push('learningRate > 0');
  }
  if (config.optimizer !== 'sgd' && config.optimizer !== 'adam') {
    problems.push("optimizer 'sgd' or 'adam'");
  }
  if (!Number.isFinite(config.proximalMu) || config.proximalMu < 0)
    problems.push('proximalMu >= 0');
  if (!Number.isFinite(config.seed)) problems.push('a finite seed');
  if (problems.length > 0) {
    throw new CohortError('CONFIG_INVALID', `fit config needs ${problems.join(', ')}`);
  }
}
