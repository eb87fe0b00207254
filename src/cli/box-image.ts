// Detections drawn on an image as coloured rectangles (one colour per class), encoded as PNG.
import { PNG } from 'pngjs';
import type { RgbImage } from '../data/image.js';

/** A box in whole pixels, edges included. */
export interface PixelBox {
  readonly classId: number;
  readonly left: number;
  readonly top: number;
  readonly right: number;
  readonly bottom: number;
}

/** Saturated, mutually distinct colours; classes beyond the list reuse them in order. */
const PALETTE: readonly { name: string; rgb: readonly [number, number, number] }[] = [
  { name: 'red', rgb: [255, 0, 0] }, { name: 'green', rgb: [0, 200, 0] }, { name: 'blue', rgb: [0, 64, 255] },
  { name: 'yellow', rgb: [255, 220, 0] }, { name: 'magenta', rgb: [255, 0, 255] }, { name: 'cyan', rgb: [0, 220, 220] },
  { name: 'orange', rgb: [255, 128, 0] }, { name: 'purple', rgb: [128, 0, 255] }, { name: 'white', rgb: [255, 255, 255] },
];

export const classColour = (classId: number) => PALETTE[classId % PALETTE.length]!;

/** Normalised centre box to whole pixels of a width x height image, clamped to it (as Darknet's draw_detections). */
export function toPixels(box: { cx: number; cy: number; w: number; h: number }, width: number, height: number): Omit<PixelBox, 'classId'> {
  const clamp = (v: number, size: number) => Math.min(Math.max(Math.round(v), 0), size - 1);
  return {
    left: clamp((box.cx - box.w / 2) * width, width),
    right: clamp((box.cx + box.w / 2) * width, width),
    top: clamp((box.cy - box.h / 2) * height, height),
    bottom: clamp((box.cy + box.h / 2) * height, height),
  };
}

/** Nearest-neighbour enlargement by an integer factor, so boxes on a small image stay legible. */
export function enlarge(image: RgbImage, factor: number): RgbImage {
  const width = image.width * factor;
  const height = image.height * factor;
  const data = new Float32Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (Math.floor(y / factor) * image.width + Math.floor(x / factor)) * 3;
      data.set(image.data.subarray(from, from + 3), (y * width + x) * 3);
    }
  }
  return { width, height, data };
}

/** The image with every box outlined, as PNG bytes; lines about 1% of the height thick (at least 1 pixel). */
export function drawBoxes(image: RgbImage, boxes: readonly PixelBox[]): Buffer {
  const png = new PNG({ width: image.width, height: image.height });
  for (let p = 0; p < image.width * image.height; p++) {
    for (let c = 0; c < 3; c++) png.data[p * 4 + c] = Math.round(Math.min(Math.max(image.data[p * 3 + c]!, 0), 1) * 255);
    png.data[p * 4 + 3] = 255;
  }
  const thickness = Math.max(1, Math.round(image.height * 0.01));
  const paint = (x: number, y: number, rgb: readonly number[]) => {
    if (x < 0 || y < 0 || x >= image.width || y >= image.height) return;
    png.data.set(rgb, (y * image.width + x) * 4);
  };
  for (const box of boxes) {
    const { rgb } = classColour(box.classId);
    for (let k = 0; k < thickness; k++) {
      for (let x = box.left; x <= box.right; x++) {
        paint(x, box.top + k, rgb);
        paint(x, box.bottom - k, rgb);
      }
      for (let y = box.top; y <= box.bottom; y++) {
        paint(box.left + k, y, rgb);
        paint(box.right - k, y, rgb);
      }
    }
  }
  return PNG.sync.write(png);
}
