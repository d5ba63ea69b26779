import { isCohortError } from '../../shared/errors';

/**
 * The message (`CODE: reason`) of the CohortError a promise rejects with, or 'resolved', so a
 * test compares refusals as text in one `expect`. Anything but a CohortError is rethrown.
 */
export async function rejectionOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isCohortError(error)) return error.message;
    throw error;
  }
  return 'resolved';
}

/** The same for a function that throws synchronously: its CohortError message, or 'returned'. */
export function thrownBy(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (isCohortError(error)) return error.message;
    throw error;
  }
  return 'returned';
}
