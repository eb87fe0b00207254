// Darknet detection labels: a .txt file per image with one `class cx cy w h` line per object,
// coordinates normalised to the image (0..1, centre and size). An empty file means no objects.
import { existsSync } from 'node:fs';
import { basename, dirname, extname, join, sep } from 'node:path';
import { DataError } from './data-error.js';
import { linesOf } from './list-file.js';

export interface Box {
  readonly classId: number;
  /** Centre and size, normalised to the image's width (cx, w) and height (cy, h). */
  readonly cx: number;
  readonly cy: number;
  readonly w: number;
  readonly h: number;
}

/**
 * Where the label file of an image may be, in the order tried: Darknet's rule (the last directory
 * named `images` or `JPEGImages` becomes `labels`, the extension becomes .txt), then the .txt
 * next to the image.
 */
export function labelCandidates(imagePath: string): string[] {
  const txt = join(dirname(imagePath), `${basename(imagePath, extname(imagePath))}.txt`);
  const parts = txt.split(/[\\/]/);
  const at = parts.map((p) => p === 'images' || p === 'JPEGImages').lastIndexOf(true);
  if (at < 0 || at === parts.length - 1) return [txt];
  parts[at] = 'labels';
  return [parts.join(sep), txt];
}

/** The first existing label file of an image; a DataError naming the image and the paths tried. */
export function findLabelFile(imagePath: string): string {
  const candidates = labelCandidates(imagePath);
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined) throw new DataError(imagePath, undefined, `no label file (looked for ${candidates.join(' and ')})`);
  return found;
}

const FIELDS = ['cx', 'cy', 'w', 'h'] as const;

/** Parses and checks a label file; `classes` is the number of classes (ids 0..classes-1). */
export function readLabels(labelFile: string, classes: number): Box[] {
  return linesOf(labelFile, 'label file').map(({ text, line }) => parseLabelLine(text, classes, labelFile, line));
}

export function parseLabelLine(text: string, classes: number, file: string, line: number): Box {
  const fields = text.split(/\s+/);
  if (fields.length !== 5) throw new DataError(file, line, `expected 5 fields "class cx cy w h", got ${fields.length}: "${text}"`);
  const [classText, ...coordTexts] = fields as [string, string, string, string, string];
  if (!/^\d+$/.test(classText)) throw new DataError(file, line, `class "${classText}" is not a whole number`);
  const classId = Number(classText);
  if (classId >= classes) throw new DataError(file, line, `class ${classId} out of range 0..${classes - 1} (${classes} classes)`);
  const coords = coordTexts.map((t, i) => {
    const value = Number(t);
    if (t === '' || !Number.isFinite(value)) throw new DataError(file, line, `${FIELDS[i]} "${t}" is not a number`);
    if (value < 0 || value > 1) throw new DataError(file, line, `${FIELDS[i]} ${t} outside 0..1`);
    return value;
  });
  const [cx, cy, w, h] = coords as [number, number, number, number];
  if (w === 0 || h === 0) throw new DataError(file, line, `box has zero ${w === 0 ? 'width' : 'height'}`);
  return { classId, cx, cy, w, h };
}
