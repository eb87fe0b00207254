// Classification data sets, two layouts:
// - a list file of image paths plus a names file; the label is the one class name that occurs in
//   the path as written in the list, as a whole token (between / \ _ - . space or the ends).
//   Darknet matches any substring; whole tokens keep "cat" from matching "bobcat".
// - a folder per class: root/<class name>/<image>.png|jpg|jpeg, classes in sorted name order.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { BadSamples, DataError, type DataReport, type OnBadSample } from './data-error.js';
import { readImage } from './image.js';
import { readList } from './list-file.js';

export interface ClassificationSample {
  readonly image: string;
  readonly classId: number;
  readonly height: number;
  readonly width: number;
}

export interface ClassificationSet {
  readonly source: string;
  readonly names: readonly string[];
  readonly samples: readonly ClassificationSample[];
  readonly report: DataReport;
}

export interface ClassificationOptions {
  /** Default 'fail': the first problem throws a DataError. */
  readonly onBadSample?: OnBadSample;
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

/** The class ids whose name occurs in `path` as a whole token. */
export function classesInPath(path: string, names: readonly string[]): number[] {
  const ids: number[] = [];
  names.forEach((name, id) => {
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    if (new RegExp(`(^|[\\\\/_.\\- ])${escaped}($|[\\\\/_.\\- ])`).test(path)) ids.push(id);
  });
  return ids;
}

export function openClassificationList(listFile: string, names: readonly string[], options: ClassificationOptions = {}): ClassificationSet {
  const bad = new BadSamples(options.onBadSample ?? 'fail');
  const samples: ClassificationSample[] = [];
  for (const entry of readList(listFile)) {
    const sample = bad.check(() => {
      const ids = classesInPath(entry.written, names);
      if (ids.length !== 1) {
        const found = ids.length === 0 ? 'no class name' : `${ids.length} class names (${ids.map((i) => names[i]).join(', ')})`;
        throw new DataError(listFile, entry.line, `path "${entry.written}" contains ${found}; it needs exactly one`);
      }
      if (!existsSync(entry.path)) throw new DataError(entry.path, undefined, `image not found (listed at ${listFile}:${entry.line})`);
      const image = readImage(entry.path);
      return { image: entry.path, classId: ids[0]!, height: image.height, width: image.width };
    });
    if (sample) samples.push(sample);
  }
  return finish(listFile, names, samples, bad.report());
}

export function openClassificationFolder(root: string, options: ClassificationOptions = {}): ClassificationSet {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new DataError(root, undefined, 'data set folder not found');
  const names = readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  if (names.length === 0) throw new DataError(root, undefined, 'no class folders');
  const bad = new BadSamples(options.onBadSample ?? 'fail');
  const samples: ClassificationSample[] = [];
  names.forEach((name, classId) => {
    const files = readdirSync(join(root, name))
      .filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
      .sort();
    for (const file of files) {
      const path = join(root, name, file);
      const sample = bad.check(() => {
        const image = readImage(path);
        return { image: path, classId, height: image.height, width: image.width };
      });
      if (sample) samples.push(sample);
    }
  });
  return finish(root, names, samples, bad.report());
}

function finish(source: string, names: readonly string[], samples: ClassificationSample[], report: DataReport): ClassificationSet {
  if (samples.length === 0) throw new DataError(source, undefined, `no usable samples (${report.skipped} skipped${report.problems[0] ? `; first: ${report.problems[0]}` : ''})`);
  return { source, names, samples, report };
}
