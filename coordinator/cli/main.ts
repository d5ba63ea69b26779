#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { clientCommand } from './client-command';
import { coordinatorCommand } from './coordinator-command';
import { demoCommand } from './demo-command';
import { modelCommand } from './model-command';
import { simulateCommand } from './simulate-command';

/** The `cohort` command line: every subcommand has --help; bad flags are refused up front. */
export function buildProgram(): Command {
  const program = new Command('cohort')
    .description('Cohort: federated learning with secure aggregation over socket.io')
    .version('0.1.0')
    .showHelpAfterError()
    .addCommand(coordinatorCommand())
    .addCommand(clientCommand())
    .addCommand(simulateCommand())
    .addCommand(demoCommand())
    .addCommand(modelCommand());
  // Usage errors throw instead of exiting, so they share the exit code of refused options.
  const override = (command: Command): void => {
    command.exitOverride();
    command.commands.forEach(override);
  };
  override(program);
  return program;
}

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((error: unknown) => {
      if (error instanceof CommanderError) {
        // commander already printed the message (or the help / version).
        process.exitCode = error.exitCode === 0 ? 0 : 2;
        return;
      }
      process.stderr.write(`${String(error)}\n`);
      process.exitCode = 1;
    });
}
