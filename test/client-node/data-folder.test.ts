import { loadDataFolder } from '../../client-node/data/load-data-folder';
import { writeModelInput } from '../../client-node/data/image-convert';
import { isCohortError } from '../../shared/errors';
import {
  cifarPixel,
  cifarRecords,
  idxBytes,
  solidJpeg,
  solidPng,
  tempFolder,
} from './data-fixtures';

let folder: ReturnType<typeof tempFolder>;
beforeEach(() => {
  folder = tempFolder();
});
afterEach(() => folder.cleanup());

async function errorCode(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isCohortError(error) ? error.code : String(error);
}

describe('loadDataFolder: CIFAR-10 binary', () => {
  it('reads gzipped batches from cifar-10-batches-bin/, train batches in numeric order', async () => {
    folder.write('cifar-10-batches-bin/data_batch_10.bin.gz', cifarRecords([9]), true);
    folder.write('cifar-10-batches-bin/data_batch_2.bin', cifarRecords([2, 3]));
    folder.write('cifar-10-batches-bin/test_batch.bin.gz', cifarRecords([5]), true);
    folder.write('cifar-10-batches-bin/batches.meta.txt', new TextEncoder().encode('airplane\n'));
    const { train, test } = await loadDataFolder(folder.dir, { shape: [32, 32, 3] });
    expect(Array.from(train.labels)).toEqual([2, 3, 9]);
    expect(Array.from(test.labels)).toEqual([5]);
    expect(train.images[2 * 3072 + 4 * 3 + 1]).toBeCloseTo(cifarPixel(0, 1, 4) / 255, 6);
  });

  it('refuses batches that do not match the model input shape', async () => {
    folder.write('data_batch_1.bin', cifarRecords([1]));
    expect(await errorCode(loadDataFolder(folder.dir, { shape: [28, 28, 1] }))).toBe(
      'DATA_INVALID',
    );
  });

  it('reports a corrupt batch as DATA_INVALID', async () => {
    folder.write('data_batch_1.bin', cifarRecords([1]).subarray(0, 100));
    expect(await errorCode(loadDataFolder(folder.dir))).toBe('DATA_INVALID');
  });
});

describe('loadDataFolder: MNIST-style IDX', () => {
  it('reads train and t10k pairs, gzipped or not', async () => {
    folder.write('train-images-idx3-ubyte.gz', idxBytes([3, 2, 2], new Array(12).fill(255)), true);
    folder.write('train-labels-idx1-ubyte', idxBytes([3], [0, 1, 2]));
    folder.write('t10k-images-idx3-ubyte', idxBytes([1, 2, 2], [0, 0, 0, 51]));
    folder.write('t10k-labels-idx1-ubyte.gz', idxBytes([1], [4]), true);
    const { train, test } = await loadDataFolder(folder.dir);
    expect(train).toMatchObject({ count: 3, shape: [2, 2, 1], classes: 10 });
    expect(train.images.every((v) => v === 1)).toBe(true);
    expect(test.count).toBe(1);
    expect(test.images[3]).toBeCloseTo(0.2, 6);
  });

  it('gives an empty test set when only the train pair exists, and rejects half pairs', async () => {
    folder.write('train-images-idx3-ubyte', idxBytes([1, 1, 1], [0]));
    folder.write('train-labels-idx1-ubyte', idxBytes([1], [0]));
    expect((await loadDataFolder(folder.dir)).test.count).toBe(0);
    folder.write('t10k-images-idx3-ubyte', idxBytes([1, 1, 1], [0]));
    expect(await errorCode(loadDataFolder(folder.dir))).toBe('DATA_INVALID');
  });
});

describe('loadDataFolder: image folders', () => {
  const red: [number, number, number] = [255, 0, 0];
  const blue: [number, number, number] = [0, 0, 255];
  const gray: [number, number, number] = [128, 128, 128];

  it('uses train/ and test/, labels classes by sorted name, resizes and converts', async () => {
    folder.write('train/zebra/a.png', solidPng(8, 6, red));
    folder.write('train/zebra/b.JPG', solidJpeg(4, 4, red));
    folder.write('train/ant/a.jpeg', solidJpeg(16, 16, blue));
    folder.write('train/ant/notes.txt', new Uint8Array([1, 2]));
    folder.write('test/ant/x.png', solidPng(4, 4, blue));
    const { train, test } = await loadDataFolder(folder.dir, { shape: [4, 4, 3] });
    expect(train).toMatchObject({ count: 3, shape: [4, 4, 3], classes: 2 });
    expect(Array.from(train.labels)).toEqual([0, 1, 1]); // ant, zebra, zebra
    // Example 0 is blue (JPEG, downscaled), example 1 red (PNG, resized from 8x6).
    expect(train.images[2]).toBeGreaterThan(0.95);
    expect(train.images[0]).toBeLessThan(0.05);
    expect(train.images[48]).toBeCloseTo(1, 6);
    expect(train.images[48 + 2]).toBeCloseTo(0, 6);
    expect(test).toMatchObject({ count: 1, classes: 2 });
    expect(Array.from(test.labels)).toEqual([0]);

    const gray1 = await loadDataFolder(folder.dir, { shape: [2, 2, 1] });
    // Luma of pure red: 0.299.
    expect(gray1.train.images[4]).toBeCloseTo(0.299, 3);
  });

  it('with resize: false, refuses images that would need resizing or turning grey, naming --resize', async () => {
    folder.write('train/a/one.png', solidPng(4, 4, gray));
    folder.write('train/b/two.png', solidPng(4, 4, red));
    folder.write('test/a/x.png', solidPng(4, 4, gray));
    // Exactly the model's size and colour: accepted.
    expect(
      (await loadDataFolder(folder.dir, { shape: [4, 4, 3], resize: false })).train.count,
    ).toBe(2);
    // Another size.
    const resized = await loadDataFolder(folder.dir, { shape: [2, 2, 3], resize: false }).catch(
      (e: unknown) => e,
    );
    expect(isCohortError(resized, 'DATA_INVALID')).toBe(true);
    expect((resized as Error).message).toMatch(
      /4x4, but the model takes 2x2x3 images: pass --resize/,
    );
    // A colour image for a 1-channel model; grey ones alone would pass.
    const colour = await loadDataFolder(folder.dir, { shape: [4, 4, 1], resize: false }).catch(
      (e: unknown) => e,
    );
    expect((colour as Error).message).toMatch(/two\.png is a colour image.*--resize/);
    folder.write('train/b/two.png', solidPng(4, 4, gray));
    expect(
      (await loadDataFolder(folder.dir, { shape: [4, 4, 1], resize: false })).train.count,
    ).toBe(2);
  });

  it('holds out every 10th image per class when there is no test/ folder', async () => {
    for (let i = 0; i < 20; i++)
      folder.write(`cats/${String(i).padStart(2, '0')}.png`, solidPng(2, 2, gray));
    for (let i = 0; i < 9; i++) folder.write(`dogs/${i}.png`, solidPng(2, 2, red));
    const { train, test } = await loadDataFolder(folder.dir);
    // Defaults to the first image's size; grayscale first image -> 1 channel.
    expect(train.shape).toEqual([2, 2, 1]);
    expect(test.count).toBe(2);
    expect(Array.from(test.labels)).toEqual([0, 0]);
    expect(train.count).toBe(27);
  });

  it('rejects an undecodable image', async () => {
    folder.write('cats/bad.png', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
    expect(await errorCode(loadDataFolder(folder.dir))).toBe('DATA_INVALID');
  });
});

describe('loadDataFolder: nothing usable', () => {
  it('names what it looked for', async () => {
    folder.write('readme.txt', new Uint8Array([1]));
    const error = await loadDataFolder(folder.dir).catch((e: unknown) => e);
    expect(isCohortError(error, 'DATA_NOT_FOUND')).toBe(true);
    expect(String(error)).toMatch(/data_batch_N\.bin.*train-images-idx3-ubyte.*PNG\/JPEG/);
  });

  it('reports a missing folder', async () => {
    expect(await errorCode(loadDataFolder(`${folder.dir}/nope`))).toBe('DATA_NOT_FOUND');
  });
});

describe('writeModelInput', () => {
  const image = (width: number, height: number, gray: number[]) => ({
    width,
    height,
    rgba: Uint8Array.from(gray.flatMap((v) => [v, v, v, 255])),
  });

  it('halving averages 2x2 blocks (bilinear, half-pixel centres)', () => {
    const src = image(4, 4, [0, 100, 200, 200, 100, 0, 200, 200, 40, 40, 0, 0, 40, 40, 0, 0]);
    const out = new Float32Array(4);
    writeModelInput(src, [2, 2, 1], out, 0);
    expect(Array.from(out).map((v) => Math.round(v * 255))).toEqual([50, 200, 40, 0]);
  });

  it('upscaling interpolates between pixels and clamps at the border', () => {
    const out = new Float32Array(4);
    writeModelInput(image(2, 1, [0, 200]), [1, 4, 1], out, 0);
    expect(Array.from(out).map((v) => Math.round(v * 255))).toEqual([0, 50, 150, 200]);
  });
});
