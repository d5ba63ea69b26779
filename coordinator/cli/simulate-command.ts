/* eslint-disable no-console -- the CLI's job is to print */
import { Command } from 'commander';
import { loadDataFolder } from '../../client-node/data/load-data-folder';
import { loadTaskData } from '../../client-node/data/load-task-data';
import { CohortError } from '../../shared/errors';
import { DEFAULT_MIN_PARTICIPANTS, MIN_THRESHOLD } from '../../shared/secagg/params';
import { resolveCoordinatorConfig } from '../config';
import type { RunHistory } from '../history';
import { simulate } from './simulation';
import type { OptionValues } from '../options';
import { addTableOptions, configOf, tableValues } from './command-options';
import { cliLogger } from './cli-logger';
import { attachReporter } from './reporter';
import { chooseBackend, runCommand } from './run-context';

/** Runs a simulation from parsed flags, printing progress; shared by `simulate` and `demo`. */
export async function runSimulation(flags: OptionValues): Promise<RunHistory> {
  const config = configOf(flags);
  const clients = flags.clients!;
  // Refuse bad options before loading anything (simulate() runs every client each round).
  if (flags.secureAggregation! && clients < MIN_THRESHOLD) {
    // Named by simulate's own flag: its coordinator's --min-clients is --clients.
    throw new CohortError(
      'CONFIG_UNSAFE',
      `secure aggregation needs at least ${MIN_THRESHOLD} clients per round (--clients ${clients}); ` +
        'raise --clients or pass --secure-aggregation off',
    );
  }
  const tabs = flags.browserTabs ?? 0;
  resolveCoordinatorConfig({ ...config, minClients: clients + tabs });
  const backend = await chooseBackend(flags.backend!);
  console.log(`loading ${flags.task!} data...`);
  const data =
    flags.simulationData !== undefined
      ? await loadDataFolder(flags.simulationData)
      : await loadTaskData(flags.task!, { cacheDir: flags.cacheDir! });
  console.log(
    `simulating ${clients} clients (${flags.partition!} partition, dropout ${flags.dropout!}) ` +
      `for ${flags.rounds!} rounds on ${data.train.count} training examples`,
  );
  const history = await simulate({
    clients,
    rounds: flags.rounds!,
    task: flags.task!,
    data,
    partition: flags.partition!,
    seed: flags.seed!,
    dropout: flags.dropout!,
    backend,
    browserTabs: tabs,
    ...(flags.simulationLimit !== undefined ? { limit: flags.simulationLimit } : {}),
    ...(flags.testLimit !== undefined ? { testLimit: flags.testLimit } : {}),
    ...(flags.simulationDatabase !== undefined ? { database: flags.simulationDatabase } : {}),
    coordinator: config,
    log: cliLogger(),
    onCoordinator: (coordinator) => {
      attachReporter(coordinator);
      if (tabs > 0) {
        coordinator.once('listening', () => {
          // A demo's cohort is small: the tab is told to accept it (its default floor is 5).
          const cohort = clients + tabs;
          const floor = cohort < DEFAULT_MIN_PARTICIPANTS ? `&min-participants=${cohort}` : '';
          console.log(
            `waiting for ${tabs} browser tab${tabs === 1 ? '' : 's'}: open ${coordinator.joinUrl}?sample=1${floor}`,
          );
        });
      }
    },
  });
  return history;
}

/** `cohort simulate`: a coordinator and N clients in one process over loopback sockets. */
export function simulateCommand(): Command {
  const command = new Command('simulate').description(
    'simulate a federation: one coordinator and N clients over real loopback sockets',
  );
  addTableOptions(command, 'simulate');
  return command.action((parsed: Record<string, unknown>) =>
    runCommand(async () => {
      await runSimulation(tableValues('simulate', parsed));
    }),
  );
}
