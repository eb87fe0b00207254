// Where a step's batch comes from: seeded synthetic images, or a data set (src/data) read in a seeded
// order. Step k's batch depends only on (seed, k), so every device that loads it gets the same
// images and a resumed run continues with the batches an uninterrupted run would have seen.
import type { Box } from '../data/detection-labels.js';
import type { DetectionSet } from '../data/detection-set.js';
import type { ClassificationSet } from '../data/classification-set.js';
import { loadClassificationBatch, loadDetectionBatch } from '../data/load.js';
import { epochOrder } from '../data/sampling.js';
import type { Network } from '../model/layers.js';
import { syntheticBoxes, syntheticImages, syntheticLabels } from './synthetic.js';

/** What the tail's loss compares with: a class per image, or the boxes of each image. */
export type Truth =
  | { readonly kind: 'classes'; readonly classIds: Int32Array }
  | { readonly kind: 'boxes'; readonly boxes: readonly (readonly Box[])[] };

export interface TrainingBatch {
  /** [batch, H, W, C] at the network's input size. */
  readonly images: Float32Array;
  /** Null for a front-only model (it trains against a seeded target). */
  readonly truth: Truth | null;
}

/** One number from evaluating the model on held-out data. */
export interface Evaluation {
  /** e.g. "mAP@0.5" or "accuracy". */
  readonly name: string;
  readonly value: number;
}

export interface TrainingData {
  /** For the log: what is being read. */
  readonly description: string;
  /** Synthetic batches cost nothing to make, so every device makes its own; a data set is read once, on the head. */
  readonly synthetic: boolean;
  batch(step: number): TrainingBatch;
}

/** Seeded random images; for a tail, a seeded class per image or seeded boxes. */
export function syntheticData(net: Network, batch: number, seed: number, labels: { kind: 'classes' | 'boxes'; classes: number } | null): TrainingData {
  return {
    description: `synthetic (seed ${seed})`,
    synthetic: true,
    batch: (step) => ({
      images: syntheticImages(net, batch, seed, step),
      truth: labels === null ? null
        : labels.kind === 'classes' ? { kind: 'classes', classIds: syntheticLabels(batch, labels.classes, seed, step) }
          : { kind: 'boxes', boxes: syntheticBoxes(batch, labels.classes, seed, step) },
    }),
  };
}

/** Sample indices of step `step`: consecutive batches through a new seeded permutation each epoch. */
export function stepIndices(samples: number, batch: number, seed: number, step: number): number[] {
  if (samples < 1) throw new Error('the data set has no usable samples');
  const orders = new Map<number, number[]>(); // a batch spans at most two epochs
  const indices: number[] = [];
  for (let i = step * batch; i < (step + 1) * batch; i++) {
    const epoch = Math.floor(i / samples);
    if (!orders.has(epoch)) orders.set(epoch, epochOrder(samples, seed, epoch));
    indices.push(orders.get(epoch)![i % samples]!);
  }
  return indices;
}

function checkInput(net: Network): void {
  if (net.input.channels !== 3) throw new Error(`images are RGB, but the network's input has ${net.input.channels} channels`);
}

export function detectionData(set: DetectionSet, net: Network, batch: number, seed: number): TrainingData {
  // Boxes are normalised to the image, so stretching it to the input size leaves them unchanged.
  checkInput(net);
  return {
    description: `${set.listFile} (${set.samples.length} images)`,
    synthetic: false,
    batch: (step) => {
      const indices = stepIndices(set.samples.length, batch, seed, step);
      const loaded = loadDetectionBatch(set, indices, { height: net.input.height, width: net.input.width });
      return { images: loaded.images, truth: { kind: 'boxes', boxes: loaded.boxes } };
    },
  };
}

export function classificationData(set: ClassificationSet, net: Network, batch: number, seed: number): TrainingData {
  checkInput(net);
  return {
    description: `${set.source} (${set.samples.length} images)`,
    synthetic: false,
    batch: (step) => {
      const indices = stepIndices(set.samples.length, batch, seed, step);
      const loaded = loadClassificationBatch(set, indices, { height: net.input.height, width: net.input.width });
      return { images: loaded.images, truth: { kind: 'classes', classIds: loaded.classIds } };
    },
  };
}
