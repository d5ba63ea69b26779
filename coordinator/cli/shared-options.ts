import type { Command } from 'commander';
import { Option } from 'commander';
import { EVALUATION_MODES, STRATEGY_NAMES } from '../config';
import type { CoordinatorConfigInput } from '../config';
import { TASK_NAMES } from '../../shared/model/registry';
import type { TaskName } from '../../shared/model/registry';
import { integerFlag, numberFlag, onOffFlag, secondsFlag } from './parse';

/** The tasks a command accepts. */
export const TASK_CHOICES = TASK_NAMES;

/** Adds the training and aggregation flags that `coordinator`, `simulate` and `demo` share. */
export function addRoundOptions(command: Command, defaults: { rounds: number }): Command {
  return command
    .addOption(
      new Option('--task <task>', 'learning task (model + dataset)')
        .choices(TASK_CHOICES)
        .default('mnist'),
    )
    .option('--rounds <n>', 'number of federated rounds', integerFlag(1, 100_000), defaults.rounds)
    .option('--epochs <n>', 'local epochs per round', integerFlag(1, 1000), 1)
    .option('--batch-size <n>', 'local mini-batch size', integerFlag(1, 65_536), 32)
    .option('--lr <rate>', 'local learning rate', numberFlag(0, 10, true), 0.1)
    .addOption(
      new Option('--optimizer <name>', 'local optimizer').choices(['sgd', 'adam']).default('sgd'),
    )
    .option(
      '--max-examples <n>',
      'cap on training examples per client per round (0 = all)',
      integerFlag(0),
      0,
    )
    .addOption(
      new Option('--strategy <name>', 'aggregation strategy')
        .choices(STRATEGY_NAMES)
        .default('fedavg'),
    )
    .option(
      '--server-lr <rate>',
      'server learning rate (fedavgm, fedadam, fedyogi)',
      numberFlag(0, 100, true),
    )
    .option(
      '--mu <value>',
      'FedProx proximal term weight (with --strategy fedprox)',
      numberFlag(0, 100),
    )
    .addOption(
      new Option('--evaluation <mode>', 'who evaluates the global model')
        .choices(EVALUATION_MODES)
        .default('auto'),
    )
    .addOption(
      new Option(
        '--secure-aggregation <on|off>',
        'mask updates so only their weighted average is learned',
      )
        .argParser(onOffFlag)
        .default(true, 'on'),
    )
    .option(
      '--clip <range>',
      'secure aggregation: clip each update value to [-range, range]',
      numberFlag(0, 1e6, true),
      4,
    )
    .option(
      '--weight-cap <n>',
      "cap on the example count a client's update is weighted by",
      integerFlag(1, 1 << 24),
      16_384,
    )
    .addOption(
      new Option('--phase-timeout <seconds>', 'secure aggregation: deadline of each protocol phase')
        .argParser(secondsFlag)
        .default(120_000, '120'),
    )
    .addOption(
      new Option('--round-timeout <seconds>', "deadline for a round's training phase")
        .argParser(secondsFlag)
        .default(600_000, '600'),
    )
    .option(
      '--seed <n>',
      'seed for selection, shuffling and initial weights',
      integerFlag(0, 2 ** 32 - 1),
      0,
    )
    .option(
      '--export <dir>',
      'write the final model in TensorFlow.js format (model.json + weights)',
    )
    .option('--json <file>', 'write the round history as JSON');
}

/** Commander's parsed values for the shared flags. */
export interface RoundFlags {
  task: TaskName;
  rounds: number;
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: 'sgd' | 'adam';
  maxExamples: number;
  strategy: (typeof STRATEGY_NAMES)[number];
  serverLr?: number;
  mu?: number;
  evaluation: (typeof EVALUATION_MODES)[number];
  secureAggregation: boolean;
  clip: number;
  weightCap: number;
  phaseTimeout: number;
  roundTimeout: number;
  seed: number;
  export?: string;
  json?: string;
}

/** Maps the shared flags onto coordinator options (one place, so the commands agree). */
export function roundFlagsToConfig(flags: RoundFlags): CoordinatorConfigInput {
  return {
    task: flags.task,
    rounds: flags.rounds,
    epochs: flags.epochs,
    batchSize: flags.batchSize,
    learningRate: flags.lr,
    optimizer: flags.optimizer,
    maxExamples: flags.maxExamples,
    strategy: flags.strategy,
    evaluation: flags.evaluation,
    secureAggregation: flags.secureAggregation,
    clipRange: flags.clip,
    weightCap: flags.weightCap,
    phaseTimeoutMs: flags.phaseTimeout,
    roundTimeoutMs: flags.roundTimeout,
    seed: flags.seed,
    ...(flags.serverLr !== undefined ? { serverLearningRate: flags.serverLr } : {}),
    ...(flags.mu !== undefined ? { proximalMu: flags.mu } : {}),
    ...(flags.export !== undefined ? { exportDir: flags.export } : {}),
    ...(flags.json !== undefined ? { jsonPath: flags.json } : {}),
  };
}
