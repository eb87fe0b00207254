// The synthetic "shapes" detection set in Darknet's layout, fully determined by its options:
//   shapes.names, train.txt, valid.txt (paths relative to the lists),
//   images/{train,valid}/NNNNNN.png and labels/{train,valid}/NNNNNN.txt.
// Image i of a split depends only on (seed, split, i), so a larger set extends a smaller one.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import type { Box } from './detection-labels.js';
import { mixSeeds } from './sampling.js';
import { SHAPE_NAMES, type ShapesImage, renderShapesImage, shapeBox } from './shapes-render.js';

export interface ShapesOptions {
  readonly seed: number;
  readonly train: number;
  readonly valid: number;
  /** Width and height of every image in pixels. */
  readonly size: number;
}

/** The set committed in data/shapes; `npm run shapes` regenerates it. */
export const DEFAULT_SHAPES: ShapesOptions = { seed: 1, train: 200, valid: 50, size: 96 };

const SPLITS = ['train', 'valid'] as const;

export function shapesImage(options: ShapesOptions, split: 'train' | 'valid', index: number): ShapesImage {
  return renderShapesImage(mixSeeds(options.seed, SPLITS.indexOf(split), index), options.size);
}

/** A label file's text: one `class cx cy w h` line per box, six decimals as Darknet writes them. */
export function labelText(boxes: readonly Box[]): string {
  return boxes.map((b) => `${b.classId} ${b.cx.toFixed(6)} ${b.cy.toFixed(6)} ${b.w.toFixed(6)} ${b.h.toFixed(6)}\n`).join('');
}

export function encodePng(image: { width: number; height: number; rgb: Uint8Array }): Buffer {
  const png = new PNG({ width: image.width, height: image.height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(image.rgb.buffer, image.rgb.byteOffset, image.rgb.byteLength);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false, deflateLevel: 9 });
}

/**
 * Writes the set under `outDir`. The images/ and labels/ split folders are owned by the
 * generator and emptied first, so no file of an earlier, larger set stays behind.
 * Returns the paths written, relative to outDir.
 */
export function writeShapesSet(outDir: string, options: ShapesOptions): string[] {
  checkOptions(options);
  const written: string[] = [];
  const write = (relative: string, content: string | Buffer) => {
    writeFileSync(join(outDir, relative), content);
    written.push(relative);
  };
  mkdirSync(outDir, { recursive: true });
  write('shapes.names', SHAPE_NAMES.map((n) => `${n}\n`).join(''));
  for (const split of SPLITS) {
    for (const top of ['images', 'labels']) {
      rmSync(join(outDir, top, split), { recursive: true, force: true });
      mkdirSync(join(outDir, top, split), { recursive: true });
    }
    const list: string[] = [];
    for (let i = 0; i < options[split]; i++) {
      const name = String(i).padStart(6, '0');
      const image = shapesImage(options, split, i);
      write(`images/${split}/${name}.png`, encodePng({ width: image.size, height: image.size, rgb: image.rgb }));
      write(`labels/${split}/${name}.txt`, labelText(image.shapes.map((s) => shapeBox(s, image.size))));
      list.push(`images/${split}/${name}.png\n`);
    }
    write(`${split}.txt`, list.join(''));
  }
  return written;
}

function checkOptions(o: ShapesOptions): void {
  for (const key of ['seed', 'train', 'valid', 'size'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 0) throw new RangeError(`shapes ${key} must be a whole number >= 0, got ${o[key]}`);
  }
  if (o.size < 16) throw new RangeError(`shapes size must be at least 16 pixels, got ${o.size}`);
}
