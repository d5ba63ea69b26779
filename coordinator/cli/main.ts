#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { clientCommand } from './client-command';
import { coordinatorCommand } from './coordinator-command';
import { demoCommand } from './demo-command';
import { keysCommand } from './keys-command';
import { modelCommand } from './model-command';
import { simulateCommand } from './simulate-command';

/**
 * A commander usage error (unknown option, bad value, missing `--server`...) in the format of
 * every other refusal: one line, `error: CONFIG_INVALID: message`. Commander's own
 * `error: ` prefix is dropped and its follow-up lines ("(Did you mean ...?)") joined on.
 */
export function formatUsageError(commanderMessage: string): string {
  const message = commanderMessage
    .trim()
    .replace(/^error: /, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ');
  return `error: CONFIG_INVALID: ${message}\n`;
}

/** The `cohort` command line: every subcommand has --help; bad flags are refused up front. */
export function buildProgram(): Command {
  const program = new Command('cohort')
    .description('Cohort: federated learning with secure aggregation over socket.io')
    .version('0.1.0')
    .addCommand(coordinatorCommand())
    .addCommand(clientCommand())
    .addCommand(simulateCommand())
    .addCommand(demoCommand())
    .addCommand(modelCommand())
    .addCommand(keysCommand());
  // Usage errors throw instead of exiting, so they share the exit code of refused options,
  // and print like them, followed by where to find the usage.
  const configure = (command: Command, path: string): void => {
    command
      .exitOverride()
      .configureOutput({ outputError: (str, write) => write(formatUsageError(str)) })
      .showHelpAfterError(`(run "${path} --help" for usage)`);
    command.commands.forEach((sub) => configure(sub, `${path} ${sub.name()}`));
  };
  configure(program, program.name());
  return program;
}

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((error: unknown) => {
      if (error instanceof CommanderError) {
        // commander already printed the message (or the help / version).
        if (error.code === 'commander.help' && error.exitCode !== 0) {
          // A command that needs a subcommand was given none: the usage went to stderr.
          process.stderr.write(formatUsageError('expected one of the commands listed above'));
        }
        process.exitCode = error.exitCode === 0 ? 0 : 2;
        return;
      }
      process.stderr.write(`${String(error)}\n`);
      process.exitCode = 1;
    });
}
