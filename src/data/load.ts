// Batches for training: images resized to the network input (stretched: the aspect ratio is not
// kept, as Darknet does for training; boxes are normalised, so a stretch leaves them unchanged),
// laid out N x H x W x 3, with their boxes or class ids. Images are decoded again at each load;
// nothing is cached, so memory stays at one batch.
import { seededRandom } from '../model/weights.js';
import { type AugmentOptions, type Transform, drawTransform, identityTransform, transformBoxes } from './augment.js';
import type { ClassificationSet } from './classification-set.js';
import type { Box } from './detection-labels.js';
import type { DetectionSet } from './detection-set.js';
import { type RgbImage, readImage } from './image.js';
import { resizeBilinear } from './resize.js';
import { mixSeeds } from './sampling.js';

export interface LoadOptions {
  readonly height: number;
  readonly width: number;
  /** Absent (the default): no augmentation. */
  readonly augment?: AugmentOptions & { readonly seed: number };
  /** Augmentation draws depend on (seed, epoch, sample index). */
  readonly epoch?: number;
}

export interface DetectionBatch {
  /** N x height x width x 3, values in [0, 1]. */
  readonly images: Float32Array;
  readonly boxes: Box[][];
}

export interface ClassificationBatch {
  readonly images: Float32Array;
  readonly classIds: Int32Array;
}

const AUGMENT_STREAM = 3;

export function loadDetectionBatch(set: DetectionSet, indices: readonly number[], options: LoadOptions): DetectionBatch {
  const images = new Float32Array(indices.length * options.height * options.width * 3);
  const boxes = indices.map((index, n) => {
    const sample = sampleAt(set.samples, index, set.listFile);
    const image = readImage(sample.image);
    const t = transformFor(image, index, options);
    images.set(resizeBilinear(image, options.height, options.width, t.crop, t.flip).data, n * options.height * options.width * 3);
    return transformBoxes(sample.boxes, image, t);
  });
  return { images, boxes };
}

export function loadClassificationBatch(set: ClassificationSet, indices: readonly number[], options: LoadOptions): ClassificationBatch {
  const images = new Float32Array(indices.length * options.height * options.width * 3);
  const classIds = new Int32Array(indices.length);
  indices.forEach((index, n) => {
    const sample = sampleAt(set.samples, index, set.source);
    const image = readImage(sample.image);
    const t = transformFor(image, index, options);
    images.set(resizeBilinear(image, options.height, options.width, t.crop, t.flip).data, n * options.height * options.width * 3);
    classIds[n] = sample.classId;
  });
  return { images, classIds };
}

function transformFor(image: RgbImage, index: number, options: LoadOptions): Transform {
  if (!options.augment) return identityTransform(image);
  return drawTransform(image, options.augment, seededRandom(mixSeeds(options.augment.seed, AUGMENT_STREAM, options.epoch ?? 0, index)));
}

function sampleAt<T>(samples: readonly T[], index: number, source: string): T {
  const sample = samples[index];
  if (sample === undefined) throw new RangeError(`sample index ${index} is outside ${source}'s ${samples.length} samples`);
  return sample;
}
