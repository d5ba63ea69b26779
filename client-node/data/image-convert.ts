/** A decoded image: 8-bit RGBA, row-major, as pngjs and jpeg-js both produce. */
export interface RgbaImage {
  readonly width: number;
  readonly height: number;
  readonly rgba: Uint8Array;
}

/**
 * Writes `image` into `out` (at `offset`) as [height, width, channels] floats in [0, 1],
 * the model's input layout. Size differences are resolved by bilinear resampling with
 * half-pixel centres (the sampling of tf.image.resizeBilinear with halfPixelCenters: true;
 * fine for the modest up/down-scaling of photos to a CNN's input, but it aliases when
 * shrinking by large factors). Channels: 3 keeps RGB; 1 takes the luma
 * 0.299 R + 0.587 G + 0.114 B. Alpha is ignored.
 */
export function writeModelInput(
  image: RgbaImage,
  shape: readonly [number, number, number],
  out: Float32Array,
  offset: number,
): void {
  const [height, width, channels] = shape;
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`images convert to 1 or 3 channels, not ${channels}`);
  }
  const scaleY = image.height / height;
  const scaleX = image.width / width;
  const same = image.height === height && image.width === width;
  const rgb = [0, 0, 0];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (same) {
        const at = (y * image.width + x) * 4;
        rgb[0] = image.rgba[at]!;
        rgb[1] = image.rgba[at + 1]!;
        rgb[2] = image.rgba[at + 2]!;
      } else {
        sampleBilinear(image, (y + 0.5) * scaleY - 0.5, (x + 0.5) * scaleX - 0.5, rgb);
      }
      const to = offset + (y * width + x) * channels;
      if (channels === 3) {
        out[to] = rgb[0]! / 255;
        out[to + 1] = rgb[1]! / 255;
        out[to + 2] = rgb[2]! / 255;
      } else {
        out[to] = (0.299 * rgb[0]! + 0.587 * rgb[1]! + 0.114 * rgb[2]!) / 255;
      }
    }
  }
}

/** True when every pixel has R = G = B, i.e. the image carries no colour information. */
export function isGrayscale(image: RgbaImage): boolean {
  const { rgba } = image;
  for (let at = 0; at < rgba.length; at += 4) {
    if (rgba[at] !== rgba[at + 1] || rgba[at] !== rgba[at + 2]) return false;
  }
  return true;
}

function sampleBilinear(image: RgbaImage, sy: number, sx: number, rgb: number[]): void {
  const y = Math.min(Math.max(sy, 0), image.height - 1);
  const x = Math.min(Math.max(sx, 0), image.width - 1);
  const y0 = Math.floor(y);
  const x0 = Math.floor(x);
  const y1 = Math.min(y0 + 1, image.height - 1);
  const x1 = Math.min(x0 + 1, image.width - 1);
  const fy = y - y0;
  const fx = x - x0;
  for (let c = 0; c < 3; c++) {
    const p = (yy: number, xx: number): number => image.rgba[(yy * image.width + xx) * 4 + c]!;
    const top = p(y0, x0) * (1 - fx) + p(y0, x1) * fx;
    const bottom = p(y1, x0) * (1 - fx) + p(y1, x1) * fx;
    rgb[c] = top * (1 - fy) + bottom * fy;
  }
}
