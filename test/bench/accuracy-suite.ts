/**
 * "accuracy": time to accuracy. Rounds and wall time for a secure federation of 10 clients to
 * reach 97% test accuracy on MNIST (Dirichlet 0.5 partition, the coordinator's defaults
 * otherwise), and 50% on the CIFAR-10 subset in ../shared/data/cifar10 when it is there (IID
 * and Dirichlet 0.5), each beside centralized training of the same model, from the same
 * initial weights, on the union of the clients' shards for the same number of examples seen.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { selectBackend } from '../../client-node/backend/select-backend';
import { loadTaskData } from '../../client-node/data/load-task-data';
import type { CoordinatorConfigInput } from '../../coordinator/config';
import { OPTIONS } from '../../coordinator/options';
import type { Dataset, DatasetSplit } from '../../shared/data/dataset';
import { limitExamples, selectExamples } from '../../shared/data/dataset';
import { parsePartitionSpec, partitionIndices } from '../../shared/data/partition';
import { buildModel } from '../../shared/model/build-model';
import { getModelSpec } from '../../shared/model/registry';
import type { TaskName } from '../../shared/model/registry';
import { evaluateModel, trainLocally } from '../../shared/training/local-train';
import type { BenchRow, BenchSuite, SuiteContext, SuiteResult } from './bench-types';
import type { FederationResult } from './federation-run';
import { runFederation } from './federation-run';

const CLIENTS = 10;
const SEED = 0;

/** One dataset's experiments. */
interface DatasetPlan {
  task: TaskName;
  label: string;
  target: number;
  partitions: string[];
  /** Round cap of each federation (the centralized run's cap: as many examples seen). */
  rounds: number;
  /**
   * Local epochs per round (`--epochs`; default the coordinator's). CIFAR-10 takes 5: at one
   * epoch each client steps 31 times a round and 8 rounds ended at 33%, far from 50%.
   */
  localEpochs?: number;
  /** Cap on each client's training examples (quick runs only). */
  limit?: number;
  testLimit?: number;
}

/** The accuracy suite. */
export const accuracySuite: BenchSuite = {
  name: 'accuracy',
  description:
    'time to accuracy: rounds and wall time of a secure 10-client federation to 97% on MNIST ' +
    '(Dirichlet 0.5) and 50% on CIFAR-10 (IID, Dirichlet 0.5) vs centralized training',
  run: runAccuracySuite,
};

function plans(quick: boolean, cifarPresent: boolean): DatasetPlan[] {
  const mnist: DatasetPlan = quick
    ? {
        task: 'mnist',
        label: 'MNIST',
        target: 0.97,
        partitions: ['dirichlet:0.5'],
        rounds: 2,
        limit: 60,
        testLimit: 500,
      }
    : { task: 'mnist', label: 'MNIST', target: 0.97, partitions: ['dirichlet:0.5'], rounds: 10 };
  if (!cifarPresent) return [mnist];
  const cifar: DatasetPlan = quick
    ? {
        task: 'cifar10',
        label: 'CIFAR-10 subset',
        target: 0.5,
        partitions: ['iid', 'dirichlet:0.5'],
        rounds: 2,
        limit: 30,
        testLimit: 200,
      }
    : {
        task: 'cifar10',
        label: 'CIFAR-10 subset',
        target: 0.5,
        partitions: ['iid', 'dirichlet:0.5'],
        rounds: 8,
        localEpochs: 5,
      };
  return [mnist, cifar];
}

async function runAccuracySuite(context: SuiteContext): Promise<SuiteResult> {
  const backend = await selectBackend({ preferred: 'wasm' });
  const cifarFolder = resolve(context.repoRoot, '..', 'shared', 'data', 'cifar10');
  const cifarPresent = existsSync(cifarFolder);
  const rows: BenchRow[] = [];
  const notes: string[] = [`Backend: ${backend.detail}.`];
  const details: Record<string, unknown>[] = [];

  for (const plan of plans(context.quick, cifarPresent)) {
    context.progress(`accuracy: loading ${plan.label}`);
    const data = await loadTaskData(
      plan.task,
      plan.task === 'cifar10' ? { data: cifarFolder } : {},
    );
    const test = limitExamples(data.test, plan.testLimit);
    const federated: { partition: string; result: FederationResult; union: Dataset }[] = [];
    for (const partition of plan.partitions) {
      context.progress(
        `accuracy: ${plan.label}, ${partition}, secure federation of ${CLIENTS} (at most ` +
          `${plan.rounds} rounds of ${localEpochs(plan)} local epoch(s), target ${pct(plan.target)})`,
      );
      const result = await federate(plan, partition, data, backend.tfBackend, context, {
        epochs: localEpochs(plan),
      });
      federated.push({ partition, result, union: unionOfShards(data.train, plan, partition) });
    }
    // The union of the shards is the same set for every partition of the whole training set.
    const union = federated[0]!.union;
    const epochs = Math.max(...federated.map((f) => f.result.rounds.length)) * localEpochs(plan);
    context.progress(
      `accuracy: ${plan.label}, centralized on ${union.count} examples (at most ${epochs} epochs)`,
    );
    const central = await centralized(plan, union, test, epochs, context);
    for (const f of federated) {
      const row = federatedRow(plan, f.partition, f.result, central);
      rows.push(row);
      details.push({ dataset: plan.label, partition: f.partition, rounds: roundDetails(f.result) });
    }
    rows.push(centralRow(plan, union.count, central));
    details.push({ dataset: plan.label, partition: 'centralized', epochs: central.epochs });
  }

  const bits = await secureBitsComparison(context, backend.tfBackend);
  rows.push(...bits.rows);
  notes.push(...bits.notes);

  notes.push(
    `Federations: ${CLIENTS} Node clients and the coordinator in this process over loopback ` +
      'sockets, secure aggregation on, the coordinator defaults otherwise (FedAvg, 1 local ' +
      'epoch (CIFAR-10: --epochs 5), batch 32, SGD lr 0.1, every client every round, ' +
      '--secure-bits auto); MNIST ' +
      '60,000 training images, ' +
      'CIFAR-10 the 10,000-image subset, partitioned with the given seed; centralized ' +
      `evaluation on the ${context.quick ? 'first images of the' : 'whole'} test set after each ` +
      'round. A federation stops at the first round at or above the target, or at its round cap.',
    'Centralized: the same network from the same initial weights (the coordinator seed), trained ' +
      'by the same loop (trainLocally, same batch, learning rate and optimizer) on the union of ' +
      "the clients' shards, as many epochs per federated round as a round's local epochs (the " +
      'same examples seen), evaluated on the same test set after each epoch; it stops at the ' +
      'target or after as many examples as the longest federation of that dataset saw.',
    'time s = wall time to the target (federation: the recorded round times, each including ' +
      'its evaluation; centralized: training plus the same evaluations), or over every round ' +
      'run when not reached. seen = training examples seen to that point. central/fed = ' +
      'centralized time / federated time to the target (above 1: the federation got there ' +
      'sooner); blank when either did not reach it. All clients share one thread here, so the ' +
      "federation's time is the sum of its clients' work, not what N devices would take.",
  );
  if (!cifarPresent) {
    notes.push(`CIFAR-10 rows skipped: ${cifarFolder} is absent.`);
  }
  if (context.quick) notes.push('--quick: a few rounds on small subsets; figures mean nothing.');
  return {
    columns: [
      { key: 'dataset', label: 'dataset' },
      { key: 'partition', label: 'partition' },
      { key: 'setup', label: 'training' },
      { key: 'target', label: 'target' },
      { key: 'reached', label: 'reached' },
      { key: 'rounds', label: 'rounds' },
      { key: 'seconds', label: 'time s' },
      { key: 'seen', label: 'seen' },
      { key: 'finalAccuracy', label: 'final acc' },
      { key: 'kbPerClient', label: 'KB in/client' },
      { key: 'ratio', label: 'central/fed' },
    ],
    rows,
    notes,
    details: { backend: backend.detail, clients: CLIENTS, runs: details },
  };
}

async function federate(
  plan: DatasetPlan,
  partition: string,
  data: DatasetSplit,
  backend: string,
  context: SuiteContext,
  coordinator: Partial<CoordinatorConfigInput>,
): Promise<FederationResult> {
  return runFederation({
    clients: CLIENTS,
    rounds: plan.rounds,
    task: plan.task,
    data,
    partition,
    secure: true,
    seed: SEED,
    backend,
    coordinator,
    ...(plan.limit !== undefined ? { limit: plan.limit } : {}),
    ...(plan.testLimit !== undefined ? { testLimit: plan.testLimit } : {}),
    stopWhen: (entry) => (entry.testAccuracy ?? 0) >= plan.target,
    onRound: (r) =>
      context.progress(
        `accuracy: ${plan.label} ${partition} round ${r.entry.round}: ` +
          `${pct(r.entry.testAccuracy ?? 0)} in ${(r.entry.durationMs / 1000).toFixed(1)} s`,
      ),
  });
}

/** The clients' training sets together (each shard capped like the federation's). */
function unionOfShards(train: Dataset, plan: DatasetPlan, partition: string): Dataset {
  const spec = parsePartitionSpec(partition);
  const parts = partitionIndices(train.labels, train.classes, CLIENTS, spec, SEED);
  const indices = parts.flatMap((part) =>
    Array.from(plan.limit === undefined ? part : part.slice(0, plan.limit)),
  );
  indices.sort((a, b) => a - b);
  return selectExamples(train, indices);
}

interface CentralOutcome {
  epochs: { epoch: number; accuracy: number; seconds: number }[];
}

/** Centralized training, evaluated after every epoch, until the target or `maxEpochs`. */
async function centralized(
  plan: DatasetPlan,
  union: Dataset,
  test: Dataset,
  maxEpochs: number,
  context: SuiteContext,
): Promise<CentralOutcome> {
  const model = buildModel(getModelSpec(plan.task), SEED);
  const epochs: CentralOutcome['epochs'] = [];
  let seconds = 0;
  try {
    for (let epoch = 1; epoch <= maxEpochs; epoch++) {
      const t0 = performance.now();
      await trainLocally(model, union, {
        epochs: OPTIONS.epochs.default,
        batchSize: OPTIONS.batchSize.default,
        learningRate: OPTIONS.learningRate.default,
        optimizer: OPTIONS.optimizer.default,
        proximalMu: 0,
        seed: (SEED + epoch) >>> 0,
      });
      const { accuracy } = await evaluateModel(model, test);
      seconds += (performance.now() - t0) / 1000;
      epochs.push({ epoch, accuracy, seconds });
      context.progress(
        `accuracy: ${plan.label} centralized epoch ${epoch}: ${pct(accuracy)} at ${seconds.toFixed(1)} s`,
      );
      if (accuracy >= plan.target) break;
    }
  } finally {
    model.dispose();
  }
  return { epochs };
}

function federatedRow(
  plan: DatasetPlan,
  partition: string,
  result: FederationResult,
  central: CentralOutcome,
): BenchRow {
  const rounds = result.rounds;
  const hit = rounds.findIndex((r) => (r.entry.testAccuracy ?? 0) >= plan.target);
  const upTo = hit === -1 ? rounds : rounds.slice(0, hit + 1);
  const seconds = upTo.reduce((s, r) => s + r.entry.durationMs, 0) / 1000;
  const seen = upTo.reduce((s, r) => s + r.examples, 0);
  const centralHit = central.epochs.find((e) => e.accuracy >= plan.target);
  const last = rounds[rounds.length - 1]!;
  return {
    dataset: plan.label,
    partition,
    setup: `Cohort, ${CLIENTS} clients, secure`,
    target: pct(plan.target),
    reached: hit === -1 ? `not reached in ${rounds.length} rounds` : `round ${hit + 1}`,
    rounds: hit === -1 ? null : hit + 1,
    seconds,
    seen,
    finalAccuracy: last.entry.testAccuracy,
    kbPerClient: last.entry.bytesReceived / 1024 / Math.max(1, last.entry.selected),
    ratio: hit !== -1 && centralHit ? centralHit.seconds / seconds : null,
  };
}

function centralRow(plan: DatasetPlan, count: number, central: CentralOutcome): BenchRow {
  const hit = central.epochs.findIndex((e) => e.accuracy >= plan.target);
  const upTo = hit === -1 ? central.epochs.length : hit + 1;
  const last = central.epochs[central.epochs.length - 1];
  return {
    dataset: plan.label,
    partition: 'union of the shards',
    setup: 'centralized, same loop',
    target: pct(plan.target),
    reached: hit === -1 ? `not reached in ${central.epochs.length} epochs` : `epoch ${hit + 1}`,
    rounds: hit === -1 ? null : hit + 1,
    seconds: central.epochs[upTo - 1]?.seconds ?? null,
    seen: upTo * count,
    finalAccuracy: last?.accuracy ?? null,
    kbPerClient: null,
    ratio: null,
  };
}

/**
 * The same MNIST federation with the secure wire encoding at 32 and at 24 bits per element,
 * a fixed number of rounds each, when the coordinator has the `secureBits` option.
 */
async function secureBitsComparison(
  context: SuiteContext,
  backend: string,
): Promise<{ rows: BenchRow[]; notes: string[] }> {
  if (!('secureBits' in OPTIONS)) {
    return { rows: [], notes: ['32- vs 24-bit secure encoding: no secureBits option here.'] };
  }
  const plan: DatasetPlan = context.quick
    ? {
        task: 'mnist',
        label: 'MNIST',
        target: 0.97,
        partitions: ['dirichlet:0.5'],
        rounds: 1,
        limit: 60,
        testLimit: 500,
      }
    : { task: 'mnist', label: 'MNIST', target: 0.97, partitions: ['dirichlet:0.5'], rounds: 2 };
  const data = await loadTaskData('mnist', {});
  const rows: BenchRow[] = [];
  const accuracy: Record<string, number> = {};
  for (const bits of ['32', '24']) {
    context.progress(`accuracy: MNIST secure encoding ${bits} bits, ${plan.rounds} rounds`);
    // Typed loosely: the option is newer than this suite and absent from older checkouts.
    const option: Record<string, unknown> = { secureBits: bits };
    const result = await runFederation({
      clients: CLIENTS,
      rounds: plan.rounds,
      task: 'mnist',
      data,
      partition: 'dirichlet:0.5',
      secure: true,
      seed: SEED,
      backend,
      coordinator: option,
      ...(plan.limit !== undefined ? { limit: plan.limit } : {}),
      ...(plan.testLimit !== undefined ? { testLimit: plan.testLimit } : {}),
    });
    const last = result.rounds[result.rounds.length - 1]!;
    accuracy[bits] = last.entry.testAccuracy ?? 0;
    rows.push({
      dataset: 'MNIST',
      partition: 'dirichlet:0.5',
      setup: `Cohort, ${CLIENTS} clients, secure, ${bits}-bit wire`,
      target: `${plan.rounds} rounds`,
      reached: '-',
      rounds: result.rounds.length,
      seconds: result.rounds.reduce((s, r) => s + r.entry.durationMs, 0) / 1000,
      seen: result.rounds.reduce((s, r) => s + r.examples, 0),
      finalAccuracy: last.entry.testAccuracy,
      kbPerClient: last.entry.bytesReceived / 1024 / Math.max(1, last.entry.selected),
      ratio: null,
    });
  }
  const gap = ((accuracy['32'] ?? 0) - (accuracy['24'] ?? 0)) * 100;
  return {
    rows,
    notes: [
      `32- vs 24-bit secure wire (--secure-bits): the same federation and seed for ` +
        `${plan.rounds} rounds each; final accuracy 32-bit minus 24-bit = ${gap.toFixed(2)} ` +
        'points (target: within 0.5); KB in/client is what each client sent in the last round.',
    ],
  };
}

function roundDetails(result: FederationResult): Record<string, unknown>[] {
  return result.rounds.map((r) => ({
    round: r.entry.round,
    testAccuracy: r.entry.testAccuracy,
    durationMs: r.entry.durationMs,
    examples: r.examples,
    bytesReceived: r.entry.bytesReceived,
  }));
}

function localEpochs(plan: DatasetPlan): number {
  return plan.localEpochs ?? OPTIONS.epochs.default;
}

function pct(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}
