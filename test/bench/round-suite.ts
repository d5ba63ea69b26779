/**
 * "round": end-to-end federated round time on the mnist model with 10, 50 and 100 simulated
 * clients (real local training, real loopback sockets, real secure-aggregation crypto), secure
 * and plain rounds of the same cohort, split along the coordinator's own phase events into
 * training, transfer, the secure-aggregation phases and evaluation, with the coordinator's
 * aggregation step timed on its own code.
 */
import { performance } from 'node:perf_hooks';
import { selectBackend } from '../../client-node/backend/select-backend';
import { loadTaskData } from '../../client-node/data/load-task-data';
import { StreamingWeightedMean } from '../../shared/aggregation/streaming-weighted-mean';
import { buildModel } from '../../shared/model/build-model';
import { getModelSpec } from '../../shared/model/registry';
import { SECAGG_PHASES } from '../../shared/secagg/client';
import { createFedAvg } from '../../shared/strategies/fedavg';
import { extractWeights, hashWeights } from '../../shared/weights/codec';
import type { WeightManifest } from '../../shared/weights/codec';
import type { BenchRow, BenchSuite, SuiteContext, SuiteResult } from './bench-types';
import type { MeasuredRound } from './federation-run';
import { phaseMs, runFederation } from './federation-run';
import { measure } from './measure';

/** Training examples per client per round in the default run (--max-examples of the rounds). */
const MAX_EXAMPLES = 128;
const QUICK_MAX_EXAMPLES = 64;
/** Coordinator test set for the per-round centralized evaluation. */
const TEST_LIMIT = 1_000;
const QUICK_TEST_LIMIT = 200;
const COHORTS = [10, 50, 100];
const QUICK_COHORTS = [5];
/**
 * Rounds per run: the first warms up (kernels, per-client models); of the others the fastest
 * is reported (the 2 cores are shared, so slower rounds mostly measure someone else's load).
 */
const ROUNDS = 3;
const QUICK_ROUNDS = 1;

/** The round suite. */
export const roundSuite: BenchSuite = {
  name: 'round',
  description:
    'end-to-end round time, 10/50/100 clients on mnist (real training and sockets), secure ' +
    'vs plain, split into training, transfer, secure-aggregation phases and aggregation',
  run: runRoundSuite,
};

async function runRoundSuite(context: SuiteContext): Promise<SuiteResult> {
  const quick = context.quick;
  const cohorts = quick ? QUICK_COHORTS : COHORTS;
  const maxExamples = quick ? QUICK_MAX_EXAMPLES : MAX_EXAMPLES;
  const testLimit = quick ? QUICK_TEST_LIMIT : TEST_LIMIT;
  const rounds = quick ? QUICK_ROUNDS : ROUNDS;
  const backend = await selectBackend({ preferred: 'wasm' });
  context.progress('round: loading MNIST');
  const data = await loadTaskData('mnist', {});
  const spec = getModelSpec('mnist');
  const model = buildModel(spec, 0);
  const { manifest, data: initial } = extractWeights(model);
  model.dispose();

  const rows: BenchRow[] = [];
  const details: Record<string, unknown>[] = [];
  for (const clients of cohorts) {
    const byMode: Partial<Record<'plain' | 'secure', MeasuredRound>> = {};
    for (const mode of ['plain', 'secure'] as const) {
      context.progress(
        `round: ${clients} clients, ${mode}, ${rounds} round${rounds === 1 ? '' : 's'} ` +
          `(${maxExamples} examples each)`,
      );
      const t0 = performance.now();
      const result = await runFederation({
        clients,
        rounds,
        task: 'mnist',
        data,
        secure: mode === 'secure',
        testLimit,
        backend: backend.tfBackend,
        coordinator: { maxExamples },
        onRound: (r) =>
          context.progress(
            `round: ${clients} ${mode} round ${r.entry.round}: ${r.entry.durationMs} ms`,
          ),
      });
      const measured = result.rounds.length > 1 ? result.rounds.slice(1) : result.rounds;
      const best = measured.reduce((a, b) => (b.entry.durationMs < a.entry.durationMs ? b : a));
      byMode[mode] = best;
      const aggregateMs = await timeAggregation(manifest, initial, clients, mode === 'plain');
      const plain = byMode.plain;
      rows.push(roundRow(clients, mode, best, aggregateMs, plain));
      details.push({
        clients,
        mode,
        wallSeconds: (performance.now() - t0) / 1000,
        rounds: result.rounds.map((r) => ({
          round: r.entry.round,
          durationMs: r.entry.durationMs,
          phases: r.phases,
          trainingMs: r.trainingMs,
          examples: r.examples,
          bytesReceived: r.entry.bytesReceived,
          testAccuracy: r.entry.testAccuracy,
        })),
        aggregateMs,
      });
    }
  }

  const notes = [
    `Backend: ${backend.detail}. Every client and the coordinator share this one Node process ` +
      '(one JS thread): the clients train one after another in effect, so training grows with ' +
      'the cohort, as it would on one machine, not as it would across N devices.',
    `Capped to fit 2 cores: each client trains at most ${maxExamples} examples per round ` +
      `(the coordinator's --max-examples; 1 epoch, batch 32, the other defaults), IID shards of ` +
      `MNIST's 60,000; centralized evaluation on the first ${testLimit} test images. Secure ` +
      'rounds use the default --secure-bits auto (the narrowest wire width safe for the cohort).',
    `Each cohort runs ${rounds} round${rounds === 1 ? '' : 's'} per mode` +
      (rounds > 1
        ? '; the first warms up kernels and models, and the table shows the fastest of the ' +
          "others (the machine's 2 cores are shared, so slower rounds mostly show other load)"
        : '') +
      '; details in the JSON hold every round.',
    "round ms = the coordinator's recorded round time (selection to persisted). The phases are " +
      "the coordinator's 'round-phase' events (what cohort_phase_duration_seconds records): " +
      'train ms = first client starting local training to the last one finishing (client ' +
      "session states); transfer ms = the rest of the coordinator's training phase (model " +
      'download, parsing, answers; plain mode also folds each update as it arrives); secagg ms ' +
      '= all five secure-aggregation phases, of which mask ms is MaskedInput (clients mask and ' +
      'send) and unmask ms is Unmasking (shares back, the coordinator unmasks, then the ' +
      'strategy step); eval ms = centralized evaluation and persisting the round.',
    "aggregate ms = the coordinator's aggregation code timed apart on this model and cohort " +
      '(plain: StreamingWeightedMean over N updates, FedAvg step, model hash; secure: FedAvg step ' +
      "and hash, the masked sum being part of the secagg phases); it is inside the round's " +
      'transfer (plain) or unmask (secure) time, not added to it.',
    'plain/secure = plain round ms / secure round ms of the same cohort, so above 1 would mean ' +
      'the secure round is faster; the target is >= 1/1.2 = 0.83 (a secure round at most 1.2x ' +
      'the plain one, both including training).',
  ];
  return {
    columns: [
      { key: 'clients', label: 'clients' },
      { key: 'mode', label: 'mode' },
      { key: 'roundMs', label: 'round ms' },
      { key: 'trainMs', label: 'train ms' },
      { key: 'transferMs', label: 'transfer ms' },
      { key: 'secaggMs', label: 'secagg ms' },
      { key: 'maskMs', label: 'mask ms' },
      { key: 'unmaskMs', label: 'unmask ms' },
      { key: 'aggregateMs', label: 'aggregate ms' },
      { key: 'evalMs', label: 'eval ms' },
      { key: 'kbPerClient', label: 'KB in/client' },
      { key: 'ratio', label: 'plain/secure' },
    ],
    rows,
    notes,
    details: {
      backend: backend.detail,
      maxExamplesPerClient: maxExamples,
      testLimit,
      roundsPerRun: rounds,
      runs: details,
    },
  };
}

function roundRow(
  clients: number,
  mode: 'plain' | 'secure',
  round: MeasuredRound,
  aggregateMs: number,
  plain: MeasuredRound | undefined,
): BenchRow {
  const trainingPhase = phaseMs(round, ['training']);
  const secure = mode === 'secure';
  return {
    clients,
    mode,
    roundMs: round.entry.durationMs,
    trainMs: round.trainingMs,
    transferMs: Math.max(0, trainingPhase - round.trainingMs),
    secaggMs: secure ? phaseMs(round, SECAGG_PHASES) : null,
    maskMs: secure ? phaseMs(round, ['maskedInput']) : null,
    unmaskMs: secure ? phaseMs(round, ['unmasking']) : null,
    aggregateMs,
    evalMs: phaseMs(round, ['evaluating']),
    kbPerClient: round.entry.bytesReceived / 1024 / Math.max(1, round.entry.selected),
    ratio: secure && plain ? plain.entry.durationMs / round.entry.durationMs : null,
  };
}

/**
 * Median ms of the coordinator's aggregation for one round of `clients` updates: plain, the
 * streaming weighted fold of each update, its mean, the FedAvg step and the model hash;
 * secure, the FedAvg step and the hash (the masked sum happens inside the secure phases).
 */
async function timeAggregation(
  manifest: WeightManifest,
  global: Float32Array,
  clients: number,
  plain: boolean,
): Promise<number> {
  const updates = Array.from({ length: clients }, (_, i) =>
    Float32Array.from({ length: global.length }, (_, j) => ((i * 31 + j) % 97) * 1e-4 - 0.005),
  );
  const strategy = createFedAvg();
  const measured = await measure(async () => {
    let meanDelta: Float32Array = updates[0]!;
    if (plain) {
      const mean = new StreamingWeightedMean(global.length);
      for (const update of updates) mean.add(update, 100);
      meanDelta = mean.mean();
    }
    const { weights } = strategy.aggregateFit({ global, meanDelta, round: 1 }, new Float32Array(0));
    await hashWeights(manifest, weights);
  });
  return measured.medianMs;
}
