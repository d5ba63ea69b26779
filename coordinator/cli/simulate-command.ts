/* eslint-disable no-console -- the CLI's job is to print */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { loadDataFolder } from '../../client-node/data/load-data-folder';
import { loadTaskData } from '../../client-node/data/load-task-data';
import { parsePartitionSpec } from '../../shared/data/partition';
import { CohortError } from '../../shared/errors';
import { MIN_THRESHOLD } from '../../shared/secagg/params';
import { resolveCoordinatorConfig } from '../config';
import type { RunHistory } from '../history';
import { simulate } from '../simulation';
import { integerFlag, numberFlag } from './parse';
import { cliLogger } from './cli-logger';
import { attachReporter } from './reporter';
import { addBackendOption, chooseBackend, runCommand } from './run-context';
import type { RoundFlags } from './shared-options';
import { addRoundOptions, roundFlagsToConfig } from './shared-options';

/** Flags of `simulate` (and of `demo`, which is a preset of it). */
export interface SimulateFlags extends RoundFlags {
  clients: number;
  partition: string;
  dropout: number;
  limit?: number;
  testLimit?: number;
  database?: string;
  experiment?: string;
  data?: string;
  cacheDir: string;
  backend: string;
}

function partitionFlag(value: string): string {
  try {
    parsePartitionSpec(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return value;
}

/** Adds the simulation flags to a command. */
export function addSimulateOptions(
  command: Command,
  defaults: { clients: number; rounds: number },
): Command {
  command
    .option(
      '--clients <n>',
      'number of simulated clients',
      integerFlag(1, 10_000),
      defaults.clients,
    )
    .option('--partition <spec>', 'iid | dirichlet:ALPHA | shards:K', partitionFlag, 'iid')
    .option(
      '--dropout <p>',
      'probability that a client vanishes mid-round (fault injection)',
      numberFlag(0, 0.99),
      0,
    )
    .option('--limit <n>', 'cap on training examples per client', integerFlag(1))
    .option('--test-limit <n>', 'cap on the coordinator test set', integerFlag(1))
    .option('--database <url>', 'database URL (default: a temporary SQLite file)')
    .option('--experiment <name>', 'experiment name in the database')
    .option('--data <dir>', 'dataset folder instead of the bundled/downloaded one')
    .option(
      '--cache-dir <dir>',
      'where downloaded datasets are cached',
      join(homedir(), '.cache', 'cohort'),
    );
  addRoundOptions(command, { rounds: defaults.rounds });
  return addBackendOption(command);
}

/** Runs a simulation from parsed flags, printing progress; shared by `simulate` and `demo`. */
export async function runSimulation(flags: SimulateFlags): Promise<RunHistory> {
  const config = roundFlagsToConfig(flags);
  // Refuse bad options before loading anything (simulate() runs every client each round).
  if (flags.secureAggregation && flags.clients < MIN_THRESHOLD) {
    // Named by simulate's own flag: its coordinator's --min-clients is --clients.
    throw new CohortError(
      'CONFIG_UNSAFE',
      `secure aggregation needs at least ${MIN_THRESHOLD} clients per round (--clients ${flags.clients}); ` +
        'raise --clients or pass --secure-aggregation off',
    );
  }
  resolveCoordinatorConfig({ ...config, minClients: flags.clients });
  const backend = await chooseBackend(flags.backend);
  console.log(`loading ${flags.task} data...`);
  const data =
    flags.data !== undefined
      ? await loadDataFolder(flags.data)
      : await loadTaskData(flags.task, { cacheDir: flags.cacheDir });
  console.log(
    `simulating ${flags.clients} clients (${flags.partition} partition, dropout ${flags.dropout}) ` +
      `for ${flags.rounds} rounds on ${data.train.count} training examples`,
  );
  const history = await simulate({
    clients: flags.clients,
    rounds: flags.rounds,
    task: flags.task,
    data,
    partition: flags.partition,
    seed: flags.seed,
    dropout: flags.dropout,
    backend,
    ...(flags.limit !== undefined ? { limit: flags.limit } : {}),
    ...(flags.testLimit !== undefined ? { testLimit: flags.testLimit } : {}),
    ...(flags.database !== undefined ? { database: flags.database } : {}),
    coordinator: {
      ...config,
      ...(flags.experiment !== undefined ? { experiment: flags.experiment } : {}),
    },
    log: cliLogger(),
    onCoordinator: (coordinator) => attachReporter(coordinator),
  });
  return history;
}

/** `cohort simulate`: a coordinator and N clients in one process over loopback sockets. */
export function simulateCommand(): Command {
  const command = new Command('simulate').description(
    'simulate a federation: one coordinator and N clients over real loopback sockets',
  );
  addSimulateOptions(command, { clients: 10, rounds: 5 });
  return command.action((flags: SimulateFlags) =>
    runCommand(async () => {
      await runSimulation(flags);
    }),
  );
}
