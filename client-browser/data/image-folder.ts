import type { Dataset, DatasetSplit } from '../../shared/data/dataset';
import { CohortError } from '../../shared/errors';
import type { ModelSpec } from '../../shared/model/spec';
import { fitToTask, splitLocalTest } from './fit-task';

const IMAGE_NAME = /\.(png|jpe?g|gif|bmp|webp)$/i;

interface LabelledFile {
  file: File;
  path: string;
  label: number;
}

/** What {@link loadImageFolder} reports while it decodes. */
export type FolderProgress = (done: number, total: number) => void;

/**
 * Reads a folder picked with `<input webkitdirectory>`: one subfolder per class (their names,
 * sorted, give the labels 0, 1, ..., as with the Node client's `--data` folders), or `train/`
 * and `test/` each holding such subfolders. Images are decoded by the browser
 * (createImageBitmap), resized to the model's input and, for a one-channel model, turned
 * into luma, so photos of any size fit the task. Without `train/`+`test/`, 10% is held out as
 * the local test split. Nothing leaves the tab.
 * @throws CohortError DATA_INVALID when the folder holds no class subfolders with images,
 *   more classes than the task has, or an image the browser cannot decode.
 */
export async function loadImageFolder(
  files: readonly File[],
  spec: ModelSpec,
  onProgress?: FolderProgress,
): Promise<DatasetSplit> {
  const entries = files
    .map((file) => ({ file, parts: relativeParts(file) }))
    .filter(({ file, parts }) => IMAGE_NAME.test(file.name) && parts.length >= 2)
    .filter(({ parts }) => !parts.some((part) => part.startsWith('.')));
  const split = entries.length > 0 && entries.every(({ parts }) => isSplitPath(parts));
  const classOf = (parts: string[]): string => (split ? parts[1]! : parts[0]!);
  const classes = [...new Set(entries.map(({ parts }) => classOf(parts)))].sort();
  if (classes.length === 0) {
    throw new CohortError(
      'DATA_INVALID',
      'the picked folder has no class subfolders with PNG or JPEG images in them ' +
        '(expected e.g. cats/001.png and dogs/001.png)',
    );
  }
  if (classes.length > spec.classes) {
    throw new CohortError(
      'DATA_INVALID',
      `the picked folder has ${classes.length} class subfolders (${classes.slice(0, 12).join(', ')}` +
        `${classes.length > 12 ? ', ...' : ''}), and this task has ${spec.classes} classes`,
    );
  }
  const labelled = entries
    .map(({ file, parts }): LabelledFile & { test: boolean } => ({
      file,
      path: parts.join('/'),
      label: classes.indexOf(classOf(parts)),
      test: split && parts[0] === 'test',
    }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const total = labelled.length;
  let done = 0;
  const decode = async (items: LabelledFile[]): Promise<Dataset> => {
    const [h, w, c] = spec.input;
    const images = new Float32Array(items.length * h * w * c);
    const labels = new Uint8Array(items.length);
    const canvas = makeCanvas(w, h);
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      await drawInto(canvas, item, images, i * h * w * c, c);
      labels[i] = item.label;
      done += 1;
      if (done % 25 === 0 || done === total) onProgress?.(done, total);
    }
    return { images, labels, count: items.length, shape: [h, w, c], classes: spec.classes };
  };
  const source = 'the picked folder';
  if (split) {
    const train = await decode(labelled.filter((item) => !item.test));
    const test = await decode(labelled.filter((item) => item.test));
    return { train: fitToTask(train, spec, source), test };
  }
  return splitLocalTest(fitToTask(await decode(labelled), spec, source));
}

/** The path below the picked folder: `["cats", "001.png"]` for `pets/cats/001.png`. */
function relativeParts(file: File): string[] {
  const path = file.webkitRelativePath !== '' ? file.webkitRelativePath : file.name;
  return path.split('/').slice(1);
}

function isSplitPath(parts: string[]): boolean {
  return parts.length >= 3 && (parts[0] === 'train' || parts[0] === 'test');
}

type Canvas2D = {
  canvas: OffscreenCanvas | HTMLCanvasElement;
  context: OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;
};

function makeCanvas(width: number, height: number): Canvas2D {
  const options = { willReadFrequently: true };
  if (typeof OffscreenCanvas !== 'undefined') {
    const canvas = new OffscreenCanvas(width, height);
    const context: unknown = canvas.getContext('2d', options);
    if (is2d(context)) return { canvas, context };
  }
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const context: unknown = canvas.getContext('2d', options);
  if (!is2d(context)) throw new CohortError('DATA_INVALID', 'this browser has no 2D canvas');
  return { canvas, context };
}

/**
 * A 2D context, checked at run time: the DOM typings of `getContext` differ between
 * TypeScript's lib and @types/offscreencanvas (which tfjs pulls in), so no overload is relied on.
 */
function is2d(context: unknown): context is Canvas2D['context'] {
  return (
    typeof context === 'object' &&
    context !== null &&
    typeof (context as { getImageData?: unknown }).getImageData === 'function'
  );
}

/**
 * Decodes one image, resized by the browser to the canvas size, and writes it at `offset`
 * as floats in [0, 1]: RGB for three channels, luma (0.299 R + 0.587 G + 0.114 B, as the Node
 * client) for one. Alpha is ignored, as the Node client ignores it.
 */
async function drawInto(
  { canvas, context }: Canvas2D,
  item: LabelledFile,
  out: Float32Array,
  offset: number,
  channels: number,
): Promise<void> {
  const { width, height } = canvas;
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(item.file, {
      resizeWidth: width,
      resizeHeight: height,
      resizeQuality: 'high',
    });
  } catch (error) {
    throw new CohortError(
      'DATA_INVALID',
      `${item.path} could not be decoded as an image: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  try {
    context.clearRect(0, 0, width, height);
    context.drawImage(bitmap, 0, 0, width, height);
  } finally {
    bitmap.close();
  }
  const rgba = context.getImageData(0, 0, width, height).data;
  for (let p = 0; p < width * height; p++) {
    const r = rgba[4 * p]!;
    const g = rgba[4 * p + 1]!;
    const b = rgba[4 * p + 2]!;
    if (channels === 1) {
      out[offset + p] = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    } else {
      out[offset + 3 * p] = r / 255;
      out[offset + 3 * p + 1] = g / 255;
      out[offset + 3 * p + 2] = b / 255;
    }
  }
}
