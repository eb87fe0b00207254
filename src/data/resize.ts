// Bilinear resampling of an RGB image (or of a rectangle of it) to the network's input size.
// Pixel centres are aligned (half-pixel convention, as tf.image.resizeBilinear with
// halfPixelCenters and OpenCV's INTER_LINEAR), so a coordinate normalised to the image edges maps
// to the same normalised coordinate in the output: boxes need no correction for a plain resize.
// Darknet's own resize_image aligns corners instead; the two differ by under one source pixel.
import type { RgbImage } from './image.js';

/** A rectangle of whole source pixels. */
export interface PixelRect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** Resamples `rect` of `src` (the whole image by default) to height x width; `flip` mirrors it left-right. */
export function resizeBilinear(src: RgbImage, height: number, width: number, rect: PixelRect = wholeImage(src), flip = false): RgbImage {
  checkRect(src, rect);
  const data = new Float32Array(height * width * 3);
  const cols = sourceTaps(rect.x, rect.width, width);
  for (let oy = 0; oy < height; oy++) {
    const [y0, y1, fy] = tap(rect.y, rect.height, height, oy);
    const row0 = y0 * src.width * 3;
    const row1 = y1 * src.width * 3;
    for (let ox = 0; ox < width; ox++) {
      const [x0, x1, fx] = cols[ox]!;
      const out = (oy * width + (flip ? width - 1 - ox : ox)) * 3;
      for (let c = 0; c < 3; c++) {
        const top = src.data[row0 + x0 * 3 + c]! + (src.data[row0 + x1 * 3 + c]! - src.data[row0 + x0 * 3 + c]!) * fx;
        const bottom = src.data[row1 + x0 * 3 + c]! + (src.data[row1 + x1 * 3 + c]! - src.data[row1 + x0 * 3 + c]!) * fx;
        data[out + c] = top + (bottom - top) * fy;
      }
    }
  }
  return { height, width, data };
}

export function wholeImage(image: { height: number; width: number }): PixelRect {
  return { x: 0, y: 0, width: image.width, height: image.height };
}

function sourceTaps(start: number, length: number, outLength: number): [number, number, number][] {
  return Array.from({ length: outLength }, (_, o) => tap(start, length, outLength, o));
}

/** Source indices and weight of output position `o`: centres map to centres, edges clamp. */
function tap(start: number, length: number, outLength: number, o: number): [number, number, number] {
  const s = Math.min(Math.max((o + 0.5) * (length / outLength) - 0.5, 0), length - 1);
  const i0 = Math.floor(s);
  const i1 = Math.min(i0 + 1, length - 1);
  return [start + i0, start + i1, s - i0];
}

function checkRect(src: RgbImage, r: PixelRect): void {
  const whole = Number.isInteger(r.x) && Number.isInteger(r.y) && Number.isInteger(r.width) && Number.isInteger(r.height);
  if (!whole || r.x < 0 || r.y < 0 || r.width < 1 || r.height < 1 || r.x + r.width > src.width || r.y + r.height > src.height) {
    throw new RangeError(`resize rectangle ${JSON.stringify(r)} is not whole pixels inside the ${src.width}x${src.height} image`);
  }
}
