import { readFile } from 'node:fs/promises';
import { CohortError } from '../shared/errors';

/**
 * Reads a file an option names (a token, a key list, a CA certificate) as UTF-8; a missing or
 * unreadable one is CONFIG_INVALID naming `what` and the path, the same for every option.
 */
export async function readConfigFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new CohortError(
      'CONFIG_INVALID',
      `cannot read ${what} ${path}: ${(error as Error).message}`,
    );
  }
}
