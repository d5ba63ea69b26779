import { readFile, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { CohortError } from '../../shared/errors';

const gunzipAsync = promisify(gunzip);

/**
 * Reads a dataset file, transparently gunzipping it when it starts with the gzip magic
 * bytes (so `x.bin` and `x.bin.gz` are interchangeable whatever their names claim).
 * @throws CohortError DATA_NOT_FOUND for a missing file, DATA_INVALID for corrupt gzip.
 */
export async function readDataFile(path: string): Promise<Uint8Array> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new CohortError('DATA_NOT_FOUND', `cannot read ${path}: ${(error as Error).message}`);
  }
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) return bytes;
  try {
    return await gunzipAsync(bytes);
  } catch (error) {
    throw new CohortError('DATA_INVALID', `${path} is not valid gzip: ${(error as Error).message}`);
  }
}

/** True when `path` exists and is a directory. */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
