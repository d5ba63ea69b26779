/* eslint-disable no-console -- the CLI's job is to print */
import { selectBackend } from '../../client-node/backend/select-backend';
import type { BackendPreference } from '../../client-node/backend/select-backend';
import { isCohortError } from '../../shared/errors';

/**
 * Picks the backend and says which one it chose, as the user should always know; the detail
 * names every backend skipped and why (e.g. CUDA libraries missing for tfjs-node-gpu).
 */
export async function chooseBackend(preferred: string): Promise<string> {
  const result = await selectBackend({ preferred: preferred as BackendPreference });
  console.log(`backend: ${result.choice} (${result.detail})`);
  return result.choice;
}

/**
 * Runs a command body and turns failures into one clear line and an exit code: 2 for
 * refused configuration (nothing ran), 1 for anything else.
 */
export async function runCommand(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    if (isCohortError(error)) {
      console.error(`error: ${error.message}`);
      process.exitCode = error.code === 'CONFIG_INVALID' || error.code === 'CONFIG_UNSAFE' ? 2 : 1;
    } else {
      console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
      process.exitCode = 1;
    }
  }
}
