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

const SECAGG_UNIT_TESTS = [
  'test/secagg/crypto-primitives.test.ts',
  'test/secagg/graph.test.ts',
  'test/secagg/known-answers.test.ts',
  'test/secagg/messages.test.ts',
  'test/secagg/params.test.ts',
  'test/secagg/prg.test.ts',
  'test/secagg/quantize.test.ts',
  'test/secagg/shamir.test.ts',
  'test/secagg/uniformity.test.ts',
  'test/secagg/round.test.ts',
  'test/secagg/adversarial.test.ts',
  'test/secagg/active-coordinator.test.ts',
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
      'test/integration/malformed-updates.test.ts',
      'test/integration/secure-rounds.test.ts',
      'test/secagg-sockets/dropouts.test.ts',
      'test/secagg-sockets/threshold-and-late.test.ts',
    ],
    target: 70,
  },
  {
    name: 'shared/secagg',
    mutate: ['shared/secagg/**/*.ts', '!shared/secagg/index.ts'],
    tests: SECAGG_UNIT_TESTS,
    target: 80,
  },
];
