/**
 * Splits one labelled dataset among simulated clients. Federated algorithms behave very
 * differently on IID and on label-skewed data, so experiments name the split explicitly
 * ('iid', 'dirichlet:0.5', 'shards:2') and a seed makes it reproducible everywhere.
 */
import type { Dataset } from './dataset';
import { CohortError } from '../errors';
import { createRng } from '../random';
import type { Rng } from '../random';

/**
 * How examples are spread over clients:
 * - `iid`: uniformly at random, equal sizes (within one example).
 * - `dirichlet`: per class, client shares drawn from Dirichlet(alpha) (Hsu et al. 2019);
 *   small alpha gives strong label skew, large alpha approaches IID.
 * - `shards`: sort by label, cut into `clients * shardsPerClient` shards, deal each client
 *   `shardsPerClient` random shards (McMahan et al. 2017 pathological non-IID).
 */
export type PartitionSpec =
  | { kind: 'iid' }
  | { kind: 'dirichlet'; alpha: number }
  | { kind: 'shards'; shardsPerClient: number };

const DECIMAL = /^[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Reads the command-line / config form ('iid', 'dirichlet:0.5', 'shards:2') so every entry
 * point accepts the same syntax and rejects typos instead of silently falling back to IID.
 */
export function parsePartitionSpec(text: string): PartitionSpec {
  const trimmed = text.trim().toLowerCase();
  const colon = trimmed.indexOf(':');
  // Stryker disable next-line EqualityOperator: with the colon first, either reading is an unknown kind.
  const kind = colon < 0 ? trimmed : trimmed.slice(0, colon);
  // Stryker disable next-line EqualityOperator: with the colon first, either reading is an unknown kind.
  const arg = colon < 0 ? undefined : trimmed.slice(colon + 1).trim();
  switch (kind) {
    case 'iid':
      if (arg !== undefined) throw invalid(text, "'iid' takes no parameter");
      return { kind: 'iid' };
    case 'dirichlet': {
      if (arg === undefined || !DECIMAL.test(arg)) {
        throw invalid(text, "expected 'dirichlet:<alpha>' with a positive number");
      }
      const spec: PartitionSpec = { kind: 'dirichlet', alpha: Number(arg) };
      validatePartitionSpec(spec);
      return spec;
    }
    case 'shards': {
      if (arg === undefined || !/^\d+$/.test(arg)) {
        throw invalid(text, "expected 'shards:<k>' with a positive integer");
      }
      const spec: PartitionSpec = { kind: 'shards', shardsPerClient: Number(arg) };
      validatePartitionSpec(spec);
      return spec;
    }
    default:
      throw invalid(text, "expected 'iid', 'dirichlet:<alpha>' or 'shards:<k>'");
  }
}

/** The text form of a spec, the inverse of {@link parsePartitionSpec} (for logs and configs). */
export function formatPartitionSpec(spec: PartitionSpec): string {
  switch (spec.kind) {
    case 'iid':
      return 'iid';
    case 'dirichlet':
      return `dirichlet:${spec.alpha}`;
    case 'shards':
      return `shards:${spec.shardsPerClient}`;
  }
}

/**
 * Checks a spec's values (it may come from JSON or a database row, not only from the parser)
 * and throws CONFIG_INVALID so a bad alpha never reaches the sampler.
 */
export function validatePartitionSpec(spec: PartitionSpec): void {
  switch (spec.kind) {
    case 'iid':
      return;
    case 'dirichlet':
      // Number.isFinite is false for every non-number.
      if (!Number.isFinite(spec.alpha) || spec.alpha <= 0) {
        throw new CohortError('CONFIG_INVALID', `dirichlet alpha must be > 0, got ${spec.alpha}`);
      }
      return;
    case 'shards':
      if (!Number.isInteger(spec.shardsPerClient) || spec.shardsPerClient < 1) {
        throw new CohortError(
          'CONFIG_INVALID',
          `shardsPerClient must be a positive integer, got ${spec.shardsPerClient}`,
        );
      }
      return;
    default:
      throw new CohortError(
        'CONFIG_INVALID',
        `unknown partition kind ${JSON.stringify((spec as { kind: unknown }).kind)}`,
      );
  }
}

/**
 * Assigns example indices to `clients` clients. The result is deterministic for a seed, the
 * parts are disjoint, sorted ascending, together cover every example, and no client is left
 * empty while there are at least as many examples as clients.
 */
export function partitionIndices(
  labels: ArrayLike<number>,
  classes: number,
  clients: number,
  spec: PartitionSpec,
  seed: number,
): number[][] {
  if (!Number.isInteger(clients) || clients < 1) {
    throw new CohortError('CONFIG_INVALID', `clients must be a positive integer, got ${clients}`);
  }
  if (!Number.isInteger(classes) || classes < 1) {
    throw new CohortError('CONFIG_INVALID', `classes must be a positive integer, got ${classes}`);
  }
  validatePartitionSpec(spec);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (!Number.isInteger(label) || label < 0 || label >= classes) {
      throw new CohortError('DATA_INVALID', `label ${label} at index ${i} not in [0, ${classes})`);
    }
  }
  const rng = createRng(seed);
  let parts: number[][];
  switch (spec.kind) {
    case 'iid':
      parts = splitEvenly(rng.shuffle(range(labels.length)), clients);
      break;
    case 'dirichlet':
      parts = dirichletSplit(labels, classes, clients, spec.alpha, rng);
      break;
    case 'shards':
      parts = shardSplit(labels, clients, spec.shardsPerClient, rng);
      break;
  }
  fillEmptyClients(parts);
  for (const part of parts) part.sort((a, b) => a - b);
  return parts;
}

function invalid(text: string, why: string): CohortError {
  return new CohortError('CONFIG_INVALID', `bad partition ${JSON.stringify(text)}: ${why}`);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Contiguous chunks whose sizes differ by at most one. */
function splitEvenly<T>(items: T[], parts: number): T[][] {
  const out: T[][] = [];
  for (let p = 0; p < parts; p++) {
    const start = Math.floor((p * items.length) / parts);
    const end = Math.floor(((p + 1) * items.length) / parts);
    out.push(items.slice(start, end));
  }
  return out;
}

function indicesByClass(labels: ArrayLike<number>, classes: number): number[][] {
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]!.push(i);
  return byClass;
}

function sampleDirichlet(alpha: number, k: number, rng: Rng): number[] {
  const draws = Array.from({ length: k }, () => rng.gamma(alpha));
  const total = draws.reduce((a, b) => a + b, 0);
  if (!(total > 0) || !Number.isFinite(total)) {
    // Every draw underflowed (tiny alpha): the limit of Dirichlet is one random vertex.
    const one = Array<number>(k).fill(0);
    one[rng.int(k)] = 1;
    return one;
  }
  return draws.map((d) => d / total);
}

function dirichletSplit(
  labels: ArrayLike<number>,
  classes: number,
  clients: number,
  alpha: number,
  rng: Rng,
): number[][] {
  const parts: number[][] = Array.from({ length: clients }, () => []);
  for (const members of indicesByClass(labels, classes)) {
    const proportions = sampleDirichlet(alpha, clients, rng);
    // Stryker disable next-line ConditionalExpression: an empty class deals nothing either way; this skips the work.
    if (members.length === 0) continue;
    rng.shuffle(members);
    let cumulative = 0;
    let start = 0;
    // Stryker disable next-line EqualityOperator: a step past the last client deals nothing (NaN bounds).
    for (let c = 0; c < clients; c++) {
      cumulative += proportions[c]!;
      // The last client takes the rest exactly; rounding cumulative * length (cumulative = 1
      // within 1e-16) gives the same end, so the mutants of this guard are equivalent.
      // Stryker disable next-line ConditionalExpression,ArithmeticOperator: see above.
      const end = c === clients - 1 ? members.length : Math.round(cumulative * members.length);
      const clamped = Math.min(Math.max(end, start), members.length);
      for (let i = start; i < clamped; i++) parts[c]!.push(members[i]!);
      start = clamped;
    }
  }
  return parts;
}

function shardSplit(
  labels: ArrayLike<number>,
  clients: number,
  shardsPerClient: number,
  rng: Rng,
): number[][] {
  // Shuffle first so that the order within a label is random, then stable-sort by label.
  const order = rng.shuffle(range(labels.length));
  order.sort((a, b) => labels[a]! - labels[b]!);
  const shards = splitEvenly(order, clients * shardsPerClient);
  const dealt = rng.shuffle(range(shards.length));
  return Array.from({ length: clients }, (_, c) =>
    dealt.slice(c * shardsPerClient, (c + 1) * shardsPerClient).flatMap((s) => shards[s]!),
  );
}

/**
 * Moves one example from the currently largest client to each empty one, so small datasets
 * or extreme skew never produce a client with nothing to train on.
 */
function fillEmptyClients(parts: number[][]): void {
  for (const part of parts) {
    if (part.length > 0) continue;
    let donor = parts[0]!;
    for (const candidate of parts) if (candidate.length > donor.length) donor = candidate;
    // Stryker disable next-line ConditionalExpression: without it lone examples move from client to client and the pass ends where it began.
    if (donor.length < 2) return;
    part.push(donor.pop()!);
  }
}

/**
 * Each client's train and test indices for a simulated federation: the training set split by
 * `spec`, the test set split IID (with seed + 1), so every client evaluates on a representative
 * slice whatever skew its training data has. One definition for simulate() and the benches.
 */
export function partitionClients(
  data: { train: Dataset; test: Dataset },
  clients: number,
  spec: PartitionSpec,
  seed: number,
): { train: number[][]; test: number[][] } {
  const { train, test } = data;
  return {
    train: partitionIndices(train.labels, train.classes, clients, spec, seed),
    test: partitionIndices(test.labels, test.classes, clients, { kind: 'iid' }, seed + 1),
  };
}
