/* eslint-disable no-console -- the CLI's job is to print */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadOrCreateIdentity, publicKeyHex } from '../../client-node/identity-store';
import { loadCoordinatorTestSet } from '../test-set';
import { resolveCoordinatorConfig } from '../config';
import { Coordinator } from '../coordinator';
import { integerFlag, numberFlag, secondsFlag } from './parse';
import { cliLogger } from './cli-logger';
import { attachReporter } from './reporter';
import { addBackendOption, chooseBackend, runCommand } from './run-context';
import type { RoundFlags } from './shared-options';
import { addRoundOptions, roundFlagsToConfig } from './shared-options';

interface CoordinatorFlags extends RoundFlags {
  host: string;
  port: number;
  experiment?: string;
  minClients: number;
  clientsPerRound?: number;
  fraction?: number;
  overSelection: number;
  waitTimeout?: number;
  database: string;
  keepAlive: boolean;
  data?: string;
  testLimit?: number;
  backend: string;
  identity: string;
}

/** Where the coordinator keeps its long-term identity unless told otherwise. */
export function defaultCoordinatorIdentityPath(): string {
  return join(homedir(), '.cohort', 'coordinator-identity.json');
}

/** `cohort coordinator`: serve rounds to remote clients until the last round is done. */
export function coordinatorCommand(): Command {
  const command = new Command('coordinator')
    .description('run a coordinator: schedules rounds, aggregates updates, persists every round')
    .option('--host <address>', 'interface to listen on', '0.0.0.0')
    .option('--port <n>', 'TCP port (0 = any free port)', integerFlag(0, 65_535), 8080)
    .option(
      '--experiment <name>',
      'experiment name; an existing one in the database is resumed (default: the task)',
    )
    .option(
      '--min-clients <n>',
      'clients that must be connected before a round starts',
      integerFlag(1),
      2,
    )
    .option(
      '--clients-per-round <n>',
      'updates wanted per round (default: everyone connected)',
      integerFlag(1),
    )
    .option(
      '--fraction <f>',
      'fraction of connected clients selected per round',
      numberFlag(0, 1, true),
    )
    .option(
      '--over-selection <f>',
      'extra fraction selected to absorb dropouts',
      numberFlag(0, 1),
      0.1,
    )
    .option(
      '--wait-timeout <seconds>',
      'give up if --min-clients do not connect in time (default: wait)',
      secondsFlag,
    )
    .option('--database <url>', 'file:./path.db (SQLite) or postgresql://...', 'file:./cohort.db')
    .option('--keep-alive', 'keep serving after the last round', false)
    .option('--data <dir>', 'coordinator-held test set for centralized evaluation (cifar10)')
    .option('--test-limit <n>', 'evaluate on the first N test examples only', integerFlag(1))
    .option(
      '--identity <file>',
      "the coordinator's long-term key file (created on first run, mode 0600); clients pin its public key",
      defaultCoordinatorIdentityPath(),
    );
  addRoundOptions(command, { rounds: 10 });
  addBackendOption(command);
  return command.action((flags: CoordinatorFlags) =>
    runCommand(async () => {
      const config = {
        ...roundFlagsToConfig(flags),
        host: flags.host,
        port: flags.port,
        minClients: flags.minClients,
        overSelection: flags.overSelection,
        database: flags.database,
        keepAlive: flags.keepAlive,
        ...(flags.experiment !== undefined ? { experiment: flags.experiment } : {}),
        ...(flags.clientsPerRound !== undefined ? { clientsPerRound: flags.clientsPerRound } : {}),
        ...(flags.fraction !== undefined ? { fraction: flags.fraction } : {}),
        ...(flags.waitTimeout !== undefined ? { waitForClientsMs: flags.waitTimeout } : {}),
        ...(flags.data !== undefined ? { dataDir: flags.data } : {}),
      };
      resolveCoordinatorConfig(config); // refuse bad options before loading anything
      const { identity, created } = await loadOrCreateIdentity(flags.identity);
      console.log(`${created ? 'created' : 'loaded'} coordinator identity ${flags.identity}`);
      console.log(`coordinator key: ${publicKeyHex(identity)}`);
      await chooseBackend(flags.backend);
      const testSet = await loadCoordinatorTestSet(flags.task, {
        dataDir: flags.data,
        limit: flags.testLimit,
      });
      const coordinator = await Coordinator.start(config, {
        identity,
        testSet,
        log: cliLogger(),
        observe: (c) => attachReporter(c),
      });
      let stopRequested = false;
      const stop = () => {
        stopRequested = true;
        console.log(
          'stopping coordinator (completed rounds are in the database; restart to resume)',
        );
        void coordinator.stop();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await coordinator.done;
      } catch (error) {
        // An operator's stop is a clean exit; anything else is a failure.
        if (stopRequested) return;
        throw error;
      }
      if (flags.keepAlive) {
        console.log('run complete; --keep-alive: still serving, Ctrl-C to stop');
        return;
      }
      await coordinator.stop();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }),
  );
}
