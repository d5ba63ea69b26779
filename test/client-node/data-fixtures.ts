import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encode as encodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';

/** An IDX file of unsigned bytes with the given dimensions. */
export function idxBytes(dims: number[], values: ArrayLike<number>): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  const view = new DataView(header.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(header.length + values.length);
  out.set(header);
  out.set(Array.from(values), header.length);
  return out;
}

/**
 * CIFAR-10 binary records whose pixel values encode (record, channel, position), so a test
 * can check the planar-to-NHWC conversion exactly: value = (i * 7 + c * 50 + p) % 256.
 */
export function cifarRecords(labels: number[]): Uint8Array {
  const out = new Uint8Array(labels.length * 3073);
  labels.forEach((label, i) => {
    out[i * 3073] = label;
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < 1024; p++) out[i * 3073 + 1 + c * 1024 + p] = cifarPixel(i, c, p);
    }
  });
  return out;
}

export function cifarPixel(record: number, channel: number, position: number): number {
  return (record * 7 + channel * 50 + position) % 256;
}

/** A solid-colour PNG of the given size. */
export function solidPng(width: number, height: number, rgb: [number, number, number]): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set([...rgb, 255], i * 4);
  return PNG.sync.write(png);
}

/** A solid-colour JPEG of the given size (quality 95). */
export function solidJpeg(width: number, height: number, rgb: [number, number, number]): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([...rgb, 255], i * 4);
  return encodeJpeg({ width, height, data }, 95).data;
}

/** A fresh temporary folder and a helper to write files into it; call `cleanup` after. */
export function tempFolder(): {
  dir: string;
  write: (relative: string, bytes: Uint8Array, gzip?: boolean) => string;
  cleanup: () => void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-data-'));
  return {
    dir,
    write: (relative, bytes, gzip = false) => {
      const path = join(dir, relative);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, gzip ? gzipSync(bytes) : bytes);
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
