/* eslint-disable no-console -- the CLI's job is to print */
import { Command } from 'commander';
import { getModelSpec } from '../../shared/model/registry';
import { runCommand } from './run-context';
import { addTableOptions, tableValues } from './command-options';

/** `cohort model spec`: the JSON layer spec the model is built from (torch_reference.py reads it). */
export function modelCommand(): Command {
  const model = new Command('model').description('inspect the models Cohort trains');
  const spec = model.command('spec').description("print the JSON layer spec of a task's model");
  addTableOptions(spec, 'model');
  spec.action((parsed: Record<string, unknown>) =>
    runCommand(() => {
      console.log(JSON.stringify(getModelSpec(tableValues('model', parsed).task!), null, 2));
      return Promise.resolve();
    }),
  );
  return model;
}
