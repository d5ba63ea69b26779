#!/usr/bin/env node
import { Command } from 'commander';
import { clientCommand } from './client-command';
import { coordinatorCommand } from './coordinator-command';
import { demoCommand } from './demo-command';
import { modelCommand } from './model-command';
import { simulateCommand } from './simulate-command';

/** The `cohort` command line: every subcommand has --help; bad flags are refused up front. */
export function buildProgram(): Command {
  return new Command('cohort')
    .description('Cohort: federated learning with secure aggregation over socket.io')
    .version('0.1.0')
    .showHelpAfterError()
    .addCommand(coordinatorCommand())
    .addCommand(clientCommand())
    .addCommand(simulateCommand())
    .addCommand(demoCommand())
    .addCommand(modelCommand());
}

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((error: unknown) => {
      process.stderr.write(`${String(error)}\n`);
      process.exitCode = 1;
    });
}
