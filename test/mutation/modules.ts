/**
 * The core modules mutation testing covers, declared once: what is mutated, which test files
 * judge the mutants (the suites that exercise that module, directly or through the
 * coordinator's wiring on real sockets), and the score the module must reach. A module's
 * test list is what keeps the run affordable: StrykerJS reruns the covering tests once per
 * mutant, so whole-suite runs of the slow CLI, browser and persistence layers are left out.
 */
export interface MutationModule {
  /** The name reported (a folder or a file). */
  name: string;
  /** Globs of the files to mutate. */
  mutate: readonly string[];
  /** Test files (relative to the repository root) that judge the mutants. */
  tests: readonly string[];
  /** The score (%) this module must reach (the targets). */
  target: number;
}

/** Fast, direct tests of the secure-aggregation building blocks. */
const SECAGG_PRIMITIVE_TESTS = [
  'test/secagg/crypto-primitives.test.ts',
  'test/secagg/crypto-primitives-backends.test.ts',
  'test/secagg/encoding.test.ts',
  'test/secagg/graph.test.ts',
  'test/secagg/known-answers.test.ts',
  'test/secagg/messages.test.ts',
  'test/secagg/packing.test.ts',
  'test/secagg/params.test.ts',
  'test/secagg/prg.test.ts',
  'test/secagg/quantize.test.ts',
  'test/secagg/round-view.test.ts',
  'test/secagg/shamir.test.ts',
  'test/secagg/uniformity.test.ts',
];

/**
 * Whole in-memory rounds: honest, with dropouts, and against an active coordinator. The
 * SecAgg+ rounds at n > 100 (test/secagg/sparse-graph-round.test.ts and
 * active-coordinator-sparse.test.ts) cost seconds each and are left out: the complete-graph
 * rounds run the same code, and the rules that only bite on a sparse graph are judged by
 * client-checks.test.ts, which applies them one function at a time to a 12-client graph.
 */
const SECAGG_ROUND_TESTS = [
  ...SECAGG_PRIMITIVE_TESTS,
  'test/secagg/client-checks.test.ts',
  'test/secagg/share-bundles.test.ts',
  'test/secagg/unmask.test.ts',
  'test/secagg/round.test.ts',
  'test/secagg/adversarial.test.ts',
  'test/secagg/active-coordinator.test.ts',
];

/** The protocol's state machines and checks; the rest of shared/secagg is primitives. */
const SECAGG_PROTOCOL_FILES = [
  'shared/secagg/client.ts',
  'shared/secagg/client-checks.ts',
  'shared/secagg/server.ts',
  'shared/secagg/phase-gate.ts',
  'shared/secagg/signed-payloads.ts',
  'shared/secagg/unmask.ts',
  'shared/secagg/in-memory-round.ts',
  'shared/secagg/round-ledger.ts',
];

const WIRING_TESTS = [
  'test/integration/weighting.test.ts',
  'test/integration/strategy-wiring.test.ts',
  'test/integration/resume-state.test.ts',
];

export const MUTATION_MODULES: readonly MutationModule[] = [
  {
    name: 'shared/strategies',
    mutate: ['shared/strategies/**/*.ts'],
    tests: ['test/unit/strategies.test.ts', ...WIRING_TESTS],
    target: 80,
  },
  {
    name: 'shared/aggregation',
    mutate: ['shared/aggregation/**/*.ts'],
    tests: ['test/unit/streaming-weighted-mean.test.ts', ...WIRING_TESTS],
    target: 70,
  },
  {
    name: 'shared/weights',
    mutate: ['shared/weights/**/*.ts'],
    tests: ['test/unit/weights-codec.test.ts', 'test/unit/weights-codec-buffer.test.ts'],
    target: 70,
  },
  {
    name: 'shared/data/partition.ts',
    mutate: ['shared/data/partition.ts'],
    tests: ['test/unit/partition.test.ts'],
    target: 70,
  },
  {
    name: 'coordinator/selection.ts',
    mutate: ['coordinator/selection.ts'],
    tests: ['test/unit/selection.test.ts'],
    target: 70,
  },
  {
    name: 'coordinator/round-runner.ts',
    mutate: ['coordinator/round-runner.ts'],
    tests: [
      ...WIRING_TESTS,
      'test/integration/round-record.test.ts',
      'test/integration/malformed-updates.test.ts',
      'test/integration/secure-rounds.test.ts',
      'test/secagg-sockets/dropouts.test.ts',
      'test/secagg-sockets/threshold-and-late.test.ts',
    ],
    target: 70,
  },
  {
    name: 'shared/secagg/primitives',
    mutate: [
      'shared/secagg/**/*.ts',
      '!shared/secagg/index.ts',
      ...SECAGG_PROTOCOL_FILES.map((file) => `!${file}`),
    ],
    tests: SECAGG_PRIMITIVE_TESTS,
    target: 80,
  },
  {
    name: 'shared/secagg/protocol',
    mutate: SECAGG_PROTOCOL_FILES,
    tests: SECAGG_ROUND_TESTS,
    target: 80,
  },
];
