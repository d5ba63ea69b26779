/**
 * "training": images/second of Cohort's own local training loop (trainLocally) on the built-in
 * CIFAR-10 and MNIST networks, per tfjs backend, next to PyTorch training the same spec with
 * the same batch size and thread count in the same run. This is the number that says how far
 * a client without tfjs-node is from native speed.
 */
import { selectBackend } from '../../client-node/backend/select-backend';
import { WorkerGradientHelpers } from '../../client-node/training/worker-gradient-helpers';
import type { BackendPreference } from '../../client-node/backend/select-backend';
import { limitExamples } from '../../shared/data/dataset';
import { buildModel } from '../../shared/model/build-model';
import { getModelSpec } from '../../shared/model/registry';
import type { TaskName } from '../../shared/model/registry';
import type { ModelSpec } from '../../shared/model/spec';
import type { GradientHelpers } from '../../shared/training/gradient-helpers';
import { cifar10Subset, syntheticData } from './bench-data';
import { maskingMs } from './masking-cost';
import type { BenchData } from './bench-data';
import type { BenchRow, BenchSuite, SuiteContext, SuiteResult } from './bench-types';
import { trainingImagesPerSecond } from './train-throughput';
import { locateTorchReference, runTorchReference } from './torch-reference';
import type { TorchOutcome } from './torch-reference';
import { WasmKernelModes } from './wasm-kernel-modes';

/** One Cohort measurement: a backend and kernel set, trained on `images` for `epochs`. */
interface CohortRun {
  label: string;
  backend: BackendPreference;
  kernels: 'cohort' | 'stock';
  batch: number;
  images: number;
  epochs: number;
  /** Training threads: above 1, data-parallel steps on worker threads (cohort client --threads). */
  threads: number;
}

/** What to measure for one model. */
interface ModelPlan {
  task: TaskName;
  /** Torch trains `images` for `epochs` at batch 64 (after its own warm-up epoch). */
  torch: { images: number; epochs: number };
  runs: CohortRun[];
}

const BATCH = 64;
/** Rounds of every measurement (one with --quick); each row reports its median. */
const REPEATS = 3;

function plans(quick: boolean, threads: number): ModelPlan[] {
  const wasm = (images: number, epochs: number): CohortRun => ({
    label: 'wasm + Cohort kernels, 1 thread',
    backend: 'wasm',
    kernels: 'cohort',
    batch: BATCH,
    images,
    epochs,
    threads: 1,
  });
  // With one thread there is nothing to spread: the row is left out.
  const parallel = (images: number, epochs: number): CohortRun[] =>
    threads > 1
      ? [{ ...wasm(images, epochs), label: `wasm + Cohort kernels, ${threads} threads`, threads }]
      : [];
  const stock = (images: number, epochs: number): CohortRun => ({
    label: 'wasm, stock kernels',
    backend: 'wasm',
    kernels: 'stock',
    batch: BATCH,
    images,
    epochs,
    threads: 1,
  });
  const cpu = (batch: number, images: number): CohortRun => ({
    label: 'cpu (plain JS)',
    backend: 'cpu',
    kernels: 'stock',
    batch,
    images,
    epochs: 1,
    threads: 1,
  });
  if (quick) {
    return [
      {
        task: 'cifar10',
        torch: { images: 256, epochs: 1 },
        runs: [wasm(256, 1), ...parallel(256, 1), stock(256, 1)],
      },
      {
        task: 'mnist',
        torch: { images: 256, epochs: 1 },
        runs: [wasm(256, 1), ...parallel(256, 1), stock(256, 1), cpu(16, 32)],
      },
    ];
  }
  return [
    {
      task: 'cifar10',
      torch: { images: 1024, epochs: 2 },
      runs: [wasm(1024, 2), ...parallel(1024, 2), stock(512, 2), cpu(16, 32)],
    },
    {
      // Four times cifar10's images: at ~10,000 img/s PyTorch's 2,048 took 0.2 s, and its
      // figure moved by half between runs.
      task: 'mnist',
      torch: { images: 4096, epochs: 2 },
      runs: [wasm(4096, 2), ...parallel(4096, 2), stock(1024, 1), cpu(32, 128)],
    },
  ];
}

/** The training throughput suite. */
export const trainingSuite: BenchSuite = {
  name: 'training',
  description:
    'local training img/s of trainLocally on the cifar10 and mnist networks (wasm with and ' +
    'without Cohort kernels, cpu) vs the PyTorch reference, same spec/batch/threads',
  run: runTrainingSuite,
};

async function runTrainingSuite(context: SuiteContext): Promise<SuiteResult> {
  const notes: string[] = [];
  const wasm = await selectBackend({ preferred: 'wasm' });
  notes.push(`wasm backend: ${wasm.detail}`);
  const modes = new WasmKernelModes();
  const stockProblem = modes.stockUnavailableReason();
  const torchReference = locateTorchReference(context.repoRoot);
  const rows: BenchRow[] = [];
  let torchVersion: string | null = null;

  for (const plan of plans(context.quick, context.threads)) {
    const spec = getModelSpec(plan.task);
    const params = countParams(spec);
    const largest = Math.max(plan.torch.images, ...plan.runs.map((r) => r.images));
    const data = loadData(plan.task, spec, largest, context.repoRoot);

    // Rounds of every measurement in turn (PyTorch at 1 thread and at --threads, so every
    // Cohort row meets its own thread count, then each Cohort run), each row reporting its
    // median: whatever else loads the machine for a while weighs on both sides alike.
    const repeats = context.quick ? 1 : REPEATS;
    const torchThreads = [...new Set([1, context.threads])];
    const torchSamples = new Map<number, TorchOutcome[]>(torchThreads.map((t) => [t, []]));
    const cohortSamples = plan.runs.map((): number[] => []);
    for (let repeat = 1; repeat <= repeats; repeat++) {
      const of = repeats === 1 ? '' : `, round ${repeat} of ${repeats}`;
      for (const threads of torchThreads) {
        context.progress(
          `training: ${plan.task} PyTorch reference, ${threads} thread(s) ` +
            `(${plan.torch.images} images x ${plan.torch.epochs}${of})`,
        );
        const outcome = await runTorchReference(torchReference, spec, {
          threads,
          batch: BATCH,
          ...plan.torch,
        });
        torchSamples.get(threads)!.push(outcome);
      }
      for (const [index, run] of plan.runs.entries()) {
        if (run.kernels === 'stock' && run.backend === 'wasm' && stockProblem !== null) continue;
        context.progress(
          `training: ${plan.task} ${run.label} (batch ${run.batch}, ${run.images} images x ` +
            `${run.epochs}${of})`,
        );
        cohortSamples[index]!.push(await measureRun(spec, data, run, modes));
      }
    }

    const torchByThreads = new Map<number, TorchOutcome>();
    for (const threads of torchThreads) {
      const outcome = medianOutcome(torchSamples.get(threads)!);
      if (outcome.ok) torchVersion = outcome.torchVersion;
      torchByThreads.set(threads, outcome);
      rows.push(torchRow(plan, params, outcome, threads));
    }
    for (const [index, run] of plan.runs.entries()) {
      const torch = torchByThreads.get(run.threads)!;
      const base = {
        model: plan.task,
        params,
        implementation: `Cohort ${run.label}`,
        data: data.source,
        batch: run.batch,
        images: run.images * run.epochs,
      };
      const samples = cohortSamples[index]!;
      if (samples.length === 0) {
        rows.push({ ...base, imgPerSec: null, vsTorch: null, note: `skipped: ${stockProblem}` });
        continue;
      }
      const imgPerSec = median(samples);
      rows.push({
        ...base,
        imgPerSec,
        vsTorch: torch.ok ? imgPerSec / torch.imgPerSec : null,
        note: rowNote(run, torch),
      });
    }
  }
  await selectBackend({ preferred: 'wasm' });
  const masking = await maskingAgainstEpoch(rows, context);
  notes.push(...masking.notes);

  notes.push(
    `Steady state: each Cohort row trains one untimed warm-up step, then times a trainLocally ` +
      `call (SGD lr 0.01; images = timed images x epochs); PyTorch runs ` +
      `${torchReference.python} torch_reference.py --threads T --batch ${BATCH} for T = 1 ` +
      `and T = --threads (${context.threads}) (random images, its own warm-up epoch).`,
    `"N threads" rows: data-parallel steps as cohort client --threads N runs them (N - 1 worker ` +
      'threads, each its own wasm instance, sum the gradients of their part of every batch; ' +
      'one optimizer step on the main thread), compared with PyTorch at N threads.',
    '"wasm, stock kernels" = tfjs-backend-wasm\'s own Conv2DBackpropInput, MaxPoolGrad, ' +
      'BatchMatMul and Sum; ' +
      "Cohort's Conv2DBackpropFilter stays registered since stock wasm has none and cannot train a CNN.",
    'vs torch = Cohort img/s / PyTorch img/s on the same model at the same thread count, ' +
      'measured in this run.',
    `Each row is the median of ${context.quick ? 1 : REPEATS} rounds; a round measures every ` +
      'row of its model in turn, PyTorch first, so a passing load weighs on both sides.',
  );
  return {
    columns: [
      { key: 'model', label: 'model' },
      { key: 'params', label: 'params' },
      { key: 'implementation', label: 'implementation' },
      { key: 'data', label: 'data' },
      { key: 'batch', label: 'batch' },
      { key: 'images', label: 'images timed' },
      { key: 'imgPerSec', label: 'img/s' },
      { key: 'vsTorch', label: 'vs torch' },
      { key: 'note', label: 'note' },
    ],
    rows,
    notes,
    details: {
      wasmBackend: wasm.detail,
      torchReference: torchReference.script,
      python: torchReference.python,
      torchVersion,
      threads: context.threads,
      batch: BATCH,
      masking: masking.details,
    },
  };
}

/**
 * A client's secure masking on the cifar10 network next to one local epoch of it on its shard
 * (the CIFAR-10 subset's 10,000 images split over the cohort), at the measured 1-thread rate.
 */
async function maskingAgainstEpoch(
  rows: readonly BenchRow[],
  context: SuiteContext,
): Promise<{ notes: string[]; details: Record<string, unknown>[] }> {
  const rate = rows.find(
    (r) => r.model === 'cifar10' && r.implementation === 'Cohort wasm + Cohort kernels, 1 thread',
  )?.imgPerSec;
  if (typeof rate !== 'number') return { notes: [], details: [] };
  const params = countParams(getModelSpec('cifar10'));
  const notes: string[] = [];
  const details: Record<string, unknown>[] = [];
  for (const clients of context.quick ? [10] : [10, 100]) {
    context.progress(`training: secure masking cost, cifar10, ${clients} clients`);
    const ms = await maskingMs(params, clients - 1);
    const shard = Math.floor(10_000 / clients);
    const epochMs = (shard / rate) * 1000;
    details.push({ clients, params, maskingMs: ms, shard, epochMs, fraction: ms / epochMs });
    notes.push(
      `Secure masking, cifar10 (${params} params), ${clients}-client round: quantizing and ` +
        `adding ${clients} masks (self + ${clients - 1} pairwise) costs ${ms.toFixed(1)} ms, ` +
        `${((100 * ms) / epochMs).toFixed(1)}% of one local epoch on a ${shard}-image shard ` +
        `(${(epochMs / 1000).toFixed(2)} s at the 1-thread rate above; target <= 20%).`,
    );
  }
  return { notes, details };
}

/** One timed measurement of a planned run on its backend, kernels and threads. */
async function measureRun(
  spec: ModelSpec,
  data: BenchData,
  run: CohortRun,
  modes: WasmKernelModes,
): Promise<number> {
  await selectBackend({ preferred: run.backend });
  if (run.backend === 'wasm') {
    if (run.kernels === 'stock') modes.useStock();
    else modes.useCohort();
  }
  const helpers =
    run.threads > 1
      ? new WorkerGradientHelpers({ count: run.threads - 1, spec, backend: 'wasm' })
      : undefined;
  try {
    return await trainingThroughput(spec, data, run, helpers);
  } finally {
    modes.useCohort();
    await helpers?.close();
  }
}

/** The middle value (the mean of the middle two for an even count). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The median measurement, or the first failure when any round failed. */
function medianOutcome(outcomes: readonly TorchOutcome[]): TorchOutcome {
  const failed = outcomes.find((o) => !o.ok);
  if (failed) return failed;
  const ok = outcomes.filter((o): o is Extract<TorchOutcome, { ok: true }> => o.ok);
  return { ...ok[0]!, imgPerSec: median(ok.map((o) => o.imgPerSec)) };
}

/** Images per second of trainLocally for one planned run. */
function trainingThroughput(
  spec: ModelSpec,
  data: BenchData,
  run: CohortRun,
  helpers: GradientHelpers | undefined,
): Promise<number> {
  return trainingImagesPerSecond(spec, limitExamples(data.data, run.images), {
    batch: run.batch,
    epochs: run.epochs,
    ...(helpers ? { helpers } : {}),
  });
}

function loadData(task: TaskName, spec: ModelSpec, count: number, repoRoot: string): BenchData {
  if (task === 'cifar10') {
    const real = cifar10Subset(repoRoot, count);
    if (real !== null) return real;
  }
  return syntheticData(spec, count);
}

function torchRow(plan: ModelPlan, params: number, torch: TorchOutcome, threads: number): BenchRow {
  return {
    model: plan.task,
    params,
    implementation: torch.ok
      ? `PyTorch ${torch.torchVersion}, ${threads} thread${threads === 1 ? '' : 's'}`
      : 'PyTorch',
    data: 'synthetic',
    batch: BATCH,
    images: plan.torch.images * plan.torch.epochs,
    imgPerSec: torch.ok ? torch.imgPerSec : null,
    vsTorch: torch.ok ? 1 : null,
    note: torch.ok
      ? torch.params === params
        ? 'reference'
        : `reference; PyTorch counts ${torch.params} params`
      : `skipped: ${torch.reason}`,
  };
}

function rowNote(run: CohortRun, torch: TorchOutcome): string {
  const parts: string[] = [];
  if (run.batch !== BATCH && torch.ok) parts.push(`batch ${run.batch} vs torch ${BATCH}`);
  if (!torch.ok) parts.push('no torch reference');
  return parts.join('; ');
}

/** Parameter count of the network a spec builds (dispose the model right away). */
function countParams(spec: ModelSpec): number {
  const model = buildModel(spec, 0);
  try {
    return model.countParams();
  } finally {
    model.dispose();
  }
}
