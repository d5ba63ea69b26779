import type { DatasetSplit } from '../../shared/data/dataset';
import { datasetFromIdx, parseIdx } from '../../shared/data/idx';
import { CohortError } from '../../shared/errors';
import type { ModelSpec } from '../../shared/model/spec';
import { WEB_PATHS } from '../../shared/protocol/web';
import type { SampleInfo, WebError } from '../../shared/protocol/web';
import { fitToTask, splitLocalTest } from './fit-task';

/**
 * Fetches public sample shard `shard` from the coordinator (`/api/sample/<shard>/images` and
 * `/labels`, uncompressed IDX, the format a user's own files may have, so both go through
 * shared/data/idx.ts) and holds out 10% as the local test split. This is demo data the
 * coordinator publishes, never anyone's private data.
 * @throws CohortError CONFIG_INVALID for a shard out of range, DATA_NOT_FOUND when the
 *   coordinator does not serve it, DATA_INVALID when it does not fit the task.
 */
export async function loadSampleShard(
  shard: number,
  sample: SampleInfo,
  spec: ModelSpec,
): Promise<DatasetSplit> {
  if (!Number.isInteger(shard) || shard < 0 || shard >= sample.shards) {
    throw new CohortError(
      'CONFIG_INVALID',
      sample.shards === 0
        ? 'this coordinator offers no public sample data: pick your own files'
        : `sample shard ${shard} does not exist: the coordinator offers shards 0..${sample.shards - 1}`,
    );
  }
  const base = `${WEB_PATHS.sample}${shard}`;
  const [images, labels] = await Promise.all([
    fetchBytes(`${base}/images`),
    fetchBytes(`${base}/labels`),
  ]);
  const data = datasetFromIdx(
    parseIdx(images, `sample shard ${shard} images`),
    parseIdx(labels, `sample shard ${shard} labels`),
  );
  return splitLocalTest(fitToTask(data, spec, `sample shard ${shard}`));
}

async function fetchBytes(path: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(path, { credentials: 'same-origin' });
  } catch (error) {
    throw new CohortError(
      'DATA_NOT_FOUND',
      `cannot fetch ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (!response.ok) {
    let reason = `HTTP ${response.status}`;
    try {
      const body = (await response.json()) as Partial<WebError>;
      if (typeof body.error?.message === 'string') reason += `: ${body.error.message}`;
    } catch {
      // Not a JSON error body; the status says enough.
    }
    throw new CohortError('DATA_NOT_FOUND', `the coordinator did not serve ${path} (${reason})`);
  }
  return new Uint8Array(await response.arrayBuffer());
}
