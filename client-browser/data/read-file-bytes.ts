import { CohortError } from '../../shared/errors';

/** True for names the page decompresses before parsing (`train-images-idx3-ubyte.gz`). */
export function isGzipName(name: string): boolean {
  return /\.gz$/i.test(name);
}

/** The name without its `.gz` suffix: what the file holds once decompressed. */
export function withoutGzip(name: string): string {
  return name.replace(/\.gz$/i, '');
}

/**
 * A picked file's bytes, gunzipped through the browser's own DecompressionStream when its
 * name ends in `.gz` (the form MNIST is distributed in), so no inflate code is bundled.
 * @throws CohortError DATA_INVALID when a `.gz` file is not gzip data.
 */
export async function readFileBytes(file: File): Promise<Uint8Array> {
  if (!isGzipName(file.name)) return new Uint8Array(await file.arrayBuffer());
  if (typeof DecompressionStream === 'undefined') {
    throw new CohortError(
      'DATA_INVALID',
      `${file.name}: this browser cannot decompress gzip (no DecompressionStream); pick the unzipped file`,
    );
  }
  try {
    const stream = file.stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (error) {
    throw new CohortError(
      'DATA_INVALID',
      `${file.name} is not valid gzip data: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}
