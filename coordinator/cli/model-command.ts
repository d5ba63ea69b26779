/* eslint-disable no-console -- the CLI's job is to print */
import { Command, Option } from 'commander';
import { getModelSpec } from '../../shared/model/registry';
import { runCommand } from './run-context';
import { TASK_CHOICES } from './shared-options';

/** `cohort model spec`: the JSON layer spec the model is built from (torch_reference.py reads it). */
export function modelCommand(): Command {
  const model = new Command('model').description('inspect the models Cohort trains');
  model
    .command('spec')
    .description("print the JSON layer spec of a task's model")
    .addOption(new Option('--task <task>', 'learning task').choices(TASK_CHOICES).default('mnist'))
    .action((flags: { task: string }) =>
      runCommand(() => {
        console.log(JSON.stringify(getModelSpec(flags.task), null, 2));
        return Promise.resolve();
      }),
    );
  return model;
}
