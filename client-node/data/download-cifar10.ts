import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { CohortError } from '../../shared/errors';

/** The official CIFAR-10 binary archive and its published MD5. */
export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
export const CIFAR10_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';

/** The folder inside the archive (and inside the cache) holding the batches. */
const BATCH_FOLDER = 'cifar-10-batches-bin';
/** Written last, holding the archive's MD5: a folder without it is an interrupted extraction. */
const COMPLETE_MARKER = '.cohort-complete';
const IDLE_TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 5;

export interface DownloadCifar10Options {
  /** Cache root (the CLI default is ~/.cache/cohort); batches land in cacheDir/cifar-10-batches-bin. */
  cacheDir: string;
  url?: string;
  md5?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/**
 * Makes the official CIFAR-10 binary batches available locally and returns their folder:
 * reuses a complete cached copy, otherwise streams the archive (with progress), verifies its
 * MD5, and extracts `cifar-10-batches-bin/` with tar-stream + zlib. Temporary names make
 * an interrupted run harmless; the archive is deleted once extracted.
 * @throws CohortError DATA_DOWNLOAD_FAILED (offline, HTTP error, checksum mismatch, corrupt
 *   archive), telling the user to pass --data with local CIFAR-10 files instead.
 */
export async function downloadCifar10(options: DownloadCifar10Options): Promise<string> {
  const url = options.url ?? CIFAR10_URL;
  const md5 = (options.md5 ?? CIFAR10_MD5).toLowerCase();
  const log = options.log ?? ((line: string): void => void process.stderr.write(`${line}\n`));
  const target = join(options.cacheDir, BATCH_FOLDER);
  if (await isComplete(target, md5)) {
    log(`using cached CIFAR-10 in ${target}`);
    return target;
  }
  await mkdir(options.cacheDir, { recursive: true });
  const unique = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const archive = join(options.cacheDir, `cifar-10-binary.tar.gz.${unique}.partial`);
  const staging = join(options.cacheDir, `${BATCH_FOLDER}.${unique}.partial`);
  try {
    log(`downloading CIFAR-10 from ${url}`);
    const actual = await downloadWithProgress(url, archive, log);
    if (actual !== md5) {
      throw failure(
        `checksum mismatch for ${url}: expected MD5 ${md5}, got ${actual} (corrupt or altered download)`,
      );
    }
    log('checksum OK, extracting...');
    const files = await extractBatches(archive, staging);
    if (!files.some((name) => name.startsWith('data_batch_'))) {
      throw failure(`the archive from ${url} has no ${BATCH_FOLDER}/data_batch_*.bin files`);
    }
    await writeFile(join(staging, COMPLETE_MARKER), md5);
    await rm(target, { recursive: true, force: true });
    try {
      await rename(staging, target);
    } catch (error) {
      // Another process may have finished the same download first: use its copy.
      if (!(await isComplete(target, md5))) throw error;
    }
    log(`CIFAR-10 ready in ${target} (${files.length} files)`);
    return target;
  } finally {
    await rm(archive, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}

async function isComplete(folder: string, md5: string): Promise<boolean> {
  try {
    return (await readFile(join(folder, COMPLETE_MARKER), 'utf8')).trim() === md5;
  } catch {
    return false;
  }
}

function failure(reason: string): CohortError {
  return new CohortError(
    'DATA_DOWNLOAD_FAILED',
    `could not download CIFAR-10: ${reason}. Without internet access, pass --data <folder> ` +
      'with local CIFAR-10 binary files (data_batch_1.bin ... test_batch.bin, .gz accepted)',
  );
}

/** Streams `url` to `file`, logging progress; resolves to the MD5 (hex) of the bytes. */
async function downloadWithProgress(
  url: string,
  file: string,
  log: (line: string) => void,
): Promise<string> {
  const response = await request(url, MAX_REDIRECTS);
  const total = Number(response.headers['content-length'] ?? NaN);
  const hash = createHash('md5');
  let received = 0;
  let nextReport = 0.1;
  const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);
  const countAndHash = async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      hash.update(chunk);
      received += chunk.length;
      if (Number.isFinite(total) && total > 0 && received / total >= nextReport) {
        log(`  ${Math.floor((100 * received) / total)}% (${mb(received)} of ${mb(total)} MB)`);
        while (received / total >= nextReport) nextReport += 0.1;
      }
      yield chunk;
    }
  };
  try {
    await pipeline(response, countAndHash, createWriteStream(file));
  } catch (error) {
    throw failure(`${url}: ${(error as Error).message}`);
  }
  if (Number.isFinite(total) && received !== total) {
    throw failure(`${url}: connection closed after ${received} of ${total} bytes`);
  }
  return hash.digest('hex');
}

/** GET with redirects and an idle timeout; rejects with DATA_DOWNLOAD_FAILED unless 200. */
function request(url: string, redirectsLeft: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      reject(failure(`invalid URL ${url}`));
      return;
    }
    const get =
      parsed.protocol === 'https:' ? httpsGet : parsed.protocol === 'http:' ? httpGet : null;
    if (get === null) {
      reject(failure(`unsupported URL protocol in ${url}`));
      return;
    }
    const req = get(parsed, (response) => {
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (status >= 300 && status < 400 && location !== undefined) {
        response.resume();
        if (redirectsLeft === 0) reject(failure(`${url}: too many redirects`));
        else resolve(request(new URL(location, parsed).toString(), redirectsLeft - 1));
        return;
      }
      if (status !== 200) {
        response.resume();
        reject(failure(`${url} answered HTTP ${status}`));
        return;
      }
      response.setTimeout(IDLE_TIMEOUT_MS, () =>
        response.destroy(new Error(`no data for ${IDLE_TIMEOUT_MS / 1000} s`)),
      );
      resolve(response);
    });
    req.setTimeout(IDLE_TIMEOUT_MS, () =>
      req.destroy(new Error(`no answer for ${IDLE_TIMEOUT_MS / 1000} s`)),
    );
    req.on('error', (error) => reject(failure(`${url}: ${error.message}`)));
  });
}

/**
 * Extracts the regular files of `cifar-10-batches-bin/` from the gzipped tar into `dest`
 * (flat, by base name, so no entry can write outside it); returns their names.
 */
async function extractBatches(archive: string, dest: string): Promise<string[]> {
  await mkdir(dest, { recursive: true });
  const extract = tarExtract();
  const written: string[] = [];
  const consume = async (): Promise<void> => {
    for await (const entry of extract) {
      const parts = entry.header.name.split('/').filter((p) => p !== '' && p !== '.');
      const name = basename(entry.header.name);
      const wanted =
        entry.header.type === 'file' &&
        parts.length === 2 &&
        parts[0] === BATCH_FOLDER &&
        !name.startsWith('.');
      if (wanted) {
        await pipeline(entry, createWriteStream(join(dest, name)));
        written.push(name);
      } else {
        entry.resume();
      }
    }
  };
  try {
    await Promise.all([pipeline(createReadStream(archive), createGunzip(), extract), consume()]);
  } catch (error) {
    throw failure(`the archive is corrupt: ${(error as Error).message}`);
  }
  return written.sort();
}
