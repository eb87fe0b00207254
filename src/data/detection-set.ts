// Opening a Darknet detection data set: a list file of images, each with a label file. Every
// sample is checked when the set is opened (image decodes, label lines parse, classes in range),
// so a training run never meets a bad sample halfway through an epoch.
import { existsSync } from 'node:fs';
import { BadSamples, DataError, type DataReport, type OnBadSample } from './data-error.js';
import { type Box, findLabelFile, readLabels } from './detection-labels.js';
import { readImage } from './image.js';
import { readList } from './list-file.js';

export interface DetectionSample {
  readonly image: string;
  readonly labelFile: string;
  readonly boxes: readonly Box[];
  readonly height: number;
  readonly width: number;
}

export interface DetectionSet {
  readonly listFile: string;
  readonly classes: number;
  readonly samples: readonly DetectionSample[];
  readonly report: DataReport;
}

export interface DetectionSetOptions {
  /** Number of classes; label class ids must lie in 0..classes-1. */
  readonly classes: number;
  /** Default 'fail': the first problem throws a DataError. */
  readonly onBadSample?: OnBadSample;
}

export function openDetectionList(listFile: string, options: DetectionSetOptions): DetectionSet {
  if (!Number.isInteger(options.classes) || options.classes < 1) throw new RangeError(`classes must be a positive integer, got ${options.classes}`);
  const bad = new BadSamples(options.onBadSample ?? 'fail');
  const samples: DetectionSample[] = [];
  for (const entry of readList(listFile)) {
    const sample = bad.check(() => {
      if (!existsSync(entry.path)) throw new DataError(entry.path, undefined, `image not found (listed at ${listFile}:${entry.line})`);
      const image = readImage(entry.path);
      const labelFile = findLabelFile(entry.path);
      const boxes = readLabels(labelFile, options.classes);
      return { image: entry.path, labelFile, boxes, height: image.height, width: image.width };
    });
    if (sample) samples.push(sample);
  }
  const report = bad.report();
  if (samples.length === 0) throw new DataError(listFile, undefined, `no usable samples (${report.skipped} skipped${report.problems[0] ? `; first: ${report.problems[0]}` : ''})`);
  return { listFile, classes: options.classes, samples, report };
}
