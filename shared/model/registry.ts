/**
 * The built-in tasks and their networks. A task name is what coordinator and clients agree on;
 * the spec behind it is data, so the PyTorch reference can train exactly the same network.
 */
import { CohortError } from '../errors';
import type { ModelSpec } from './spec';
import { validateModelSpec } from './validate-spec';

/**
 * Small on purpose: it must train in seconds on the wasm backend yet pass 90% MNIST test
 * accuracy after a few thousand examples (~20K parameters; conv 8 and 16 filters 5x5).
 */
const MNIST_CNN: ModelSpec = {
  input: [28, 28, 1],
  classes: 10,
  layers: [
    { type: 'conv2d', filters: 8, kernel: 5, activation: 'relu' },
    { type: 'maxpool', size: 2 },
    { type: 'conv2d', filters: 16, kernel: 5, activation: 'relu' },
    { type: 'maxpool', size: 2 },
    { type: 'flatten' },
    { type: 'dense', units: 64, activation: 'relu' },
    { type: 'dense', units: 10 },
  ],
};

/** A classic three-block CIFAR-10 CNN (~0.16M parameters), a realistic federated workload. */
const CIFAR10_CNN: ModelSpec = {
  input: [32, 32, 3],
  classes: 10,
  layers: [
    { type: 'conv2d', filters: 32, kernel: 3, padding: 'same', activation: 'relu' },
    { type: 'maxpool', size: 2 },
    { type: 'conv2d', filters: 32, kernel: 3, padding: 'same', activation: 'relu' },
    { type: 'maxpool', size: 2 },
    { type: 'conv2d', filters: 64, kernel: 3, padding: 'same', activation: 'relu' },
    { type: 'maxpool', size: 2 },
    { type: 'flatten' },
    { type: 'dense', units: 128, activation: 'relu' },
    { type: 'dropout', rate: 0.25 },
    { type: 'dense', units: 10 },
  ],
};

/** Names of the built-in tasks. */
export type TaskName = 'mnist' | 'cifar10';

/**
 * Built-in specs by task, deeply frozen so no caller can change a network behind the others'
 * backs. Other datasets of the same shape (Fashion-MNIST is MNIST-shaped) reuse a task with
 * `--data`.
 */
export const MODEL_SPECS: Readonly<Record<TaskName, ModelSpec>> = deepFreeze({
  mnist: MNIST_CNN,
  cifar10: CIFAR10_CNN,
});

/** The task names, for CLI help and validation messages. */
export const TASK_NAMES = Object.keys(MODEL_SPECS) as TaskName[];

/** True when `task` names a built-in task. */
export function isTaskName(task: string): task is TaskName {
  return Object.prototype.hasOwnProperty.call(MODEL_SPECS, task);
}

/**
 * A fresh, validated, mutable copy of a built-in task's spec; CONFIG_INVALID for an unknown
 * task so a typo never silently trains the wrong network.
 */
export function getModelSpec(task: string): ModelSpec {
  if (!isTaskName(task)) {
    throw new CohortError(
      'CONFIG_INVALID',
      `unknown task ${JSON.stringify(task)}: expected one of ${TASK_NAMES.join(', ')}`,
    );
  }
  return validateModelSpec(JSON.parse(JSON.stringify(MODEL_SPECS[task])));
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
