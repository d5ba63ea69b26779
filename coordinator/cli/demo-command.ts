/* eslint-disable no-console -- the CLI's job is to print */
import { Command } from 'commander';
import { addTableOptions, tableValues } from './command-options';
import { runCommand } from './run-context';
import { runSimulation } from './simulate-command';

/**
 * `cohort demo` (what `npm start` runs): three Node clients on disjoint MNIST shards, a few
 * rounds of secure FedAvg, everything persisted in an embedded SQLite database under
 * `.cohort/` (the demo's defaults are in the options table). Sized to finish in a few
 * minutes on a 2-core laptop and end above 90% test accuracy.
 */
export function demoCommand(): Command {
  const command = new Command('demo').description(
    'the quick-start run: coordinator + 3 local clients on MNIST shards, SQLite, secure aggregation',
  );
  addTableOptions(command, 'demo');
  return command.action((parsed: Record<string, unknown>) =>
    runCommand(async () => {
      const flags = tableValues('demo', parsed);
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
