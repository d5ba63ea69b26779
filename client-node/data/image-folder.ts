import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { decode as decodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import type { Dataset, DatasetSplit } from '../../shared/data/dataset';
import { CohortError } from '../../shared/errors';
import { isGrayscale, writeModelInput } from './image-convert';
import type { RgbaImage } from './image-convert';
import { isDirectory } from './read-data-file';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

/** Every 10th image of each class (in name order) is held out for test when there is no test/. */
const HOLDOUT_EVERY = 10;

interface LabelledFile {
  path: string;
  label: number;
}

/** How an image folder is read. */
export interface ImageFolderOptions {
  /** The model input every image becomes (default: the first image's size). */
  shape?: readonly [number, number, number];
  /**
   * Whether images of another size, or colour images for a 1-channel model, may be converted
   * (default true). False refuses them: a user whose data does not fit the task should be
   * told, not find out from the accuracy.
   */
  resize?: boolean;
}

/**
 * Finds an image-classification folder: either `train/` and `test/` subfolders, each with
 * one subfolder per class, or class subfolders directly in `dir`. Null when no class folder
 * holds a PNG or JPEG.
 */
export async function findImageFolder(
  dir: string,
): Promise<{ classes: string[]; train: LabelledFile[]; test: LabelledFile[] } | null> {
  const trainDir = join(dir, 'train');
  const testDir = join(dir, 'test');
  if ((await isDirectory(trainDir)) && (await isDirectory(testDir))) {
    const classes = [
      ...new Set([...(await subfolders(trainDir)), ...(await subfolders(testDir))]),
    ].sort();
    const train = await labelledFiles(trainDir, classes);
    if (train.length === 0) return null;
    return { classes, train, test: await labelledFiles(testDir, classes) };
  }
  const classes = (await subfolders(dir)).sort();
  const all = await labelledFiles(dir, classes);
  if (all.length === 0) return null;
  const train: LabelledFile[] = [];
  const test: LabelledFile[] = [];
  const seen = new Map<number, number>();
  for (const file of all) {
    const rank = seen.get(file.label) ?? 0;
    seen.set(file.label, rank + 1);
    (rank % HOLDOUT_EVERY === HOLDOUT_EVERY - 1 ? test : train).push(file);
  }
  return { classes, train, test };
}

/**
 * Loads a folder of class subfolders of PNG/JPEG images (classes sorted by name give the
 * labels 0, 1, ...). Uses `train/` and `test/` when both exist; otherwise every 10th image
 * of each class, in file-name order, becomes the test set (deterministic, stratified).
 * Images are converted to `shape` (see writeModelInput: bilinear resize, RGB or luma);
 * without `shape`, the first training image's size is used, with 1 channel if that image
 * is grayscale and 3 otherwise.
 * @throws CohortError DATA_NOT_FOUND when there are no images, DATA_INVALID for an
 *   undecodable file, or (with `resize: false`) one that would need converting.
 */
export async function loadImageFolder(
  dir: string,
  options: ImageFolderOptions = {},
): Promise<DatasetSplit> {
  const found = await findImageFolder(dir);
  if (found === null) {
    throw new CohortError(
      'DATA_NOT_FOUND',
      `${dir} has no class subfolders with PNG or JPEG images`,
    );
  }
  let shape = options.shape;
  if (shape === undefined) {
    const first = decodeImage(await readFile(found.train[0]!.path), found.train[0]!.path);
    shape = [first.height, first.width, isGrayscale(first) ? 1 : 3];
  }
  const classes = found.classes.length;
  const strict = options.resize === false;
  return {
    train: await loadImages(found.train, shape, classes, strict),
    test: await loadImages(found.test, shape, classes, strict),
  };
}

async function loadImages(
  files: readonly LabelledFile[],
  shape: readonly [number, number, number],
  classes: number,
  strict: boolean,
): Promise<Dataset> {
  const size = shape[0] * shape[1] * shape[2];
  const images = new Float32Array(files.length * size);
  const labels = new Uint8Array(files.length);
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    const image = decodeImage(await readFile(file.path), file.path);
    if (strict) assertFits(image, shape, file.path);
    writeModelInput(image, shape, images, i * size);
    labels[i] = file.label;
  }
  return { images, labels, count: files.length, shape: [shape[0], shape[1], shape[2]], classes };
}

/** Decodes PNG or JPEG by content (not by extension) to 8-bit RGBA. */
export function decodeImage(bytes: Buffer, name: string): RgbaImage {
  try {
    if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
      const png = PNG.sync.read(bytes);
      return { width: png.width, height: png.height, rgba: png.data };
    }
    if (bytes[0] === 0xff && bytes[1] === 0xd8) {
      const jpeg = decodeJpeg(bytes, { useTArray: true, formatAsRGBA: true });
      return { width: jpeg.width, height: jpeg.height, rgba: jpeg.data };
    }
  } catch (error) {
    throw new CohortError(
      'DATA_INVALID',
      `cannot decode image ${name}: ${(error as Error).message}`,
    );
  }
  throw new CohortError('DATA_INVALID', `${name} is neither a PNG nor a JPEG file`);
}

async function subfolders(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
}

async function labelledFiles(dir: string, classes: readonly string[]): Promise<LabelledFile[]> {
  if (classes.length > 256) {
    throw new CohortError(
      'DATA_INVALID',
      `${dir} has ${classes.length} class folders; at most 256 are supported`,
    );
  }
  const files: LabelledFile[] = [];
  for (let label = 0; label < classes.length; label++) {
    const classDir = join(dir, classes[label]!);
    if (!(await isDirectory(classDir))) continue;
    const names = (await readdir(classDir))
      .filter((name) => IMAGE_EXTENSIONS.has(extname(name).toLowerCase()))
      .sort();
    for (const name of names) files.push({ path: join(classDir, name), label });
  }
  return files;
}

/** Refuses an image that would have to be resized or turned to grey to fit `shape`. */
function assertFits(
  image: RgbaImage,
  shape: readonly [number, number, number],
  path: string,
): void {
  const [height, width, channels] = shape;
  const sized = image.height === height && image.width === width;
  if (sized && (channels === 3 || isGrayscale(image))) return;
  const what = sized ? 'a colour image' : `${image.height}x${image.width}`;
  throw new CohortError(
    'DATA_INVALID',
    `${path} is ${what}, but the model takes ${height}x${width}x${channels} images: ` +
      'pass --resize to convert them, or check the task',
  );
}
