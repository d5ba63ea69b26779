import { openStore } from '../../coordinator/persistence/store';
import type { RoundSummary } from '../../coordinator/persistence/store-types';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';

/**
 * Reads back every recorded round of an experiment, the way an operator inspecting the
 * database would, so tests judge what was persisted rather than what was emitted. Opening
 * an experiment by name returns the existing one (its stored config is rewritten to `{}`,
 * which no test reads).
 */
export async function readPersistedRounds(
  database: string,
  experiment: string,
  task: 'mnist' | 'cifar10' = 'mnist',
): Promise<RoundSummary[]> {
  const store = await openStore(database);
  try {
    const opened = await store.openExperiment({
      name: experiment,
      task,
      config: {},
      modelSpecHash: await specHash(getModelSpec(task)),
    });
    return await store.listRounds(opened.experimentId);
  } finally {
    await store.close();
  }
}
