/* eslint-disable no-console -- the CLI's job is to print */
import { Command } from 'commander';
import { runCommand } from './run-context';
import type { SimulateFlags } from './simulate-command';
import { addSimulateOptions, runSimulation } from './simulate-command';

/** Where the demo writes, relative to the working directory. */
const DEMO_DIR = '.cohort';

/**
 * `cohort demo` (what `npm start` runs): three Node clients on disjoint MNIST shards, a few
 * rounds of secure FedAvg, everything persisted in an embedded SQLite database. Sized to
 * finish in a few minutes on a 2-core laptop and end above 90% test accuracy.
 */
export function demoCommand(): Command {
  const command = new Command('demo').description(
    'the quick-start run: coordinator + 3 local clients on MNIST shards, SQLite, secure aggregation',
  );
  addSimulateOptions(command, { clients: 3, rounds: 5 });
  command.setOptionValueWithSource('limit', 2000, 'default');
  command.setOptionValueWithSource('database', `file:./${DEMO_DIR}/demo.db`, 'default');
  command.setOptionValueWithSource('export', `./${DEMO_DIR}/demo-model`, 'default');
  command.setOptionValueWithSource('json', `./${DEMO_DIR}/demo-history.json`, 'default');
  return command.action((flags: SimulateFlags) =>
    runCommand(async () => {
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
      const history = await runSimulation({
        ...flags,
        experiment: flags.experiment ?? `demo-${stamp}`,
      });
      const final = [...history.rounds]
        .reverse()
        .find((r) => r.testAccuracy !== null)?.testAccuracy;
      console.log(
        `demo done: final test accuracy ${final !== undefined && final !== null ? (final * 100).toFixed(2) + '%' : 'n/a'}`,
      );
    }),
  );
}
