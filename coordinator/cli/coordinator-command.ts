/* eslint-disable no-console -- the CLI's job is to print */
import { Command } from 'commander';
import { loadOrCreateIdentity, publicKeyHex } from '../../client-node/identity-store';
import { loadCoordinatorTestSet } from './test-set';
import { loadSampleData } from './sample-data';
import { loadTaskData } from '../../client-node/data/load-task-data';
import { resolveCoordinatorConfig } from '../config';
import { Coordinator } from '../coordinator';
import { addTableOptions, configOf, tableValues } from './command-options';
import { loadEnrollmentPolicy } from '../enrollment';
import { cliLogger } from './cli-logger';
import { attachReporter } from './reporter';
import { chooseBackend, runCommand } from './run-context';

/** `cohort coordinator`: serve rounds to remote clients until the last round is done. */
export function coordinatorCommand(): Command {
  const command = new Command('coordinator').description(
    'run a coordinator: schedules rounds, aggregates updates, persists every round',
  );
  addTableOptions(command, 'coordinator');
  return command.action((parsed: Record<string, unknown>) =>
    runCommand(async () => {
      const values = tableValues('coordinator', parsed);
      const config = configOf(values);
      const resolved = resolveCoordinatorConfig(config); // refuse bad options before loading anything
      const identityPath = values.coordinatorIdentity!;
      const { identity, created } = await loadOrCreateIdentity(identityPath);
      console.log(`${created ? 'created' : 'loaded'} coordinator identity ${identityPath}`);
      console.log(`coordinator key: ${publicKeyHex(identity)}`);
      const log = cliLogger();
      // Printed, not logged: the operator needs to see where a new token file went.
      const enrollment = await loadEnrollmentPolicy(resolved, {
        ...log,
        info: (line) => console.log(line),
      });
      await chooseBackend(values.backend!);
      // The bundled MNIST is parsed once when both the test set and the sample shards use it.
      const mnist =
        values.task === 'mnist' && values.dataDir === undefined && values.sampleDir === undefined
          ? await loadTaskData('mnist', {})
          : undefined;
      const testSet = await loadCoordinatorTestSet(values.task!, {
        dataDir: values.dataDir,
        limit: values.testLimit,
        mnist,
      });
      const sampleData = await loadSampleData(values.task!, {
        sampleDir: values.sampleDir,
        sampleShards: resolved.sampleShards,
        mnist,
      });
      const coordinator = await Coordinator.start(config, {
        identity,
        testSet,
        sampleData,
        enrollment,
        log,
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
        // An operator's stop (Ctrl-C, or the dashboard's stop) is a clean exit.
        if (stopRequested || coordinator.status === 'stopped') return;
        // The run cannot go on (a round could not be saved): close the server, then report.
        await coordinator.stop();
        throw error;
      }
      if (values.keepAlive) {
        console.log('run complete; --keep-alive: still serving, Ctrl-C to stop');
        return;
      }
      await coordinator.stop();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }),
  );
}
