import { openStore } from '../../coordinator/persistence/store';
import type {
  EnrollmentSummary,
  RoundSummary,
  StoredCheckpoint,
} from '../../coordinator/persistence/store-types';
import { getModelSpec } from '../../shared/model/registry';
import { specHash } from '../../shared/model/spec-hash';

/** What the database holds for an experiment: its round attempts and what it resumes from. */
export interface PersistedRun {
  rounds: RoundSummary[];
  lastCompletedRound: number;
  checkpoint: StoredCheckpoint | null;
  /** Who was admitted, and how (ordered by client id). */
  enrollments: EnrollmentSummary[];
}

/**
 * Reads back an experiment the way an operator inspecting the database would, so tests judge
 * what was persisted rather than what was emitted. Opening an experiment by name returns the
 * existing one (its stored config is rewritten to `{}`, which no test reads).
 */
export async function readPersistedRun(
  database: string,
  experiment: string,
  task: 'mnist' | 'cifar10' = 'mnist',
): Promise<PersistedRun> {
  const store = await openStore(database);
  try {
    const opened = await store.openExperiment({
      name: experiment,
      task,
      config: {},
      modelSpecHash: await specHash(getModelSpec(task)),
    });
    return {
      rounds: await store.listRounds(opened.experimentId),
      lastCompletedRound: opened.lastCompletedRound,
      checkpoint: await store.latestCheckpoint(opened.experimentId),
      enrollments: await store.listEnrollments(opened.experimentId),
    };
  } finally {
    await store.close();
  }
}

/** Every recorded round attempt of an experiment (see {@link readPersistedRun}). */
export async function readPersistedRounds(
  database: string,
  experiment: string,
  task: 'mnist' | 'cifar10' = 'mnist',
): Promise<RoundSummary[]> {
  return (await readPersistedRun(database, experiment, task)).rounds;
}
