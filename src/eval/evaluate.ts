// A model's quality on a data set, on one device: mAP at IoU 0.5 for a [region] tail, top-1
// accuracy for a [softmax] tail. Images are stretched to the network input without augmentation.
import type { Box } from '../data/detection-labels.js';
import type { ClassificationSet } from '../data/classification-set.js';
import type { DetectionSet } from '../data/detection-set.js';
import { loadClassificationBatch, loadDetectionBatch } from '../data/load.js';
import { lossLayer } from '../model/tail-layers.js';
import { classificationAccuracy } from './accuracy.js';
import { DEFAULT_MAP_IOU, type MeanAveragePrecision, meanAveragePrecision } from './average-precision.js';
import { type DetectOptions, EVAL_THRESH, batchDetections } from './detections.js';
import { DEFAULT_NMS } from './nms.js';
import type { Detection } from './region-decode.js';
import { type Model, runNetwork } from './run-network.js';

export interface EvaluateOptions {
  /** Images per forward pass (memory, not results). */
  readonly batch?: number;
  /** Which samples, by index; all by default. */
  readonly indices?: readonly number[];
}

/**
 * Lets timers run between batches: awaiting a backend's data resolves as a microtask, so without
 * this a whole evaluation is one synchronous stretch and a device's heartbeats stop meanwhile.
 */
const yieldToTimers = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const chunks = (indices: readonly number[], size: number): number[][] =>
  Array.from({ length: Math.ceil(indices.length / size) }, (_, k) => indices.slice(k * size, (k + 1) * size));

const allIndices = (n: number) => Array.from({ length: n }, (_, i) => i);

export async function evaluateDetector(
  model: Model, set: DetectionSet, options: EvaluateOptions & { detect?: DetectOptions; iou?: number } = {},
): Promise<MeanAveragePrecision & { detections: Detection[][]; truths: Box[][] }> {
  const layer = lossLayer(model.tail);
  if (layer?.kind !== 'region') throw new Error(`${model.net.name} has no [region] layer: mAP needs a detector`);
  const detect = options.detect ?? { thresh: EVAL_THRESH, nms: DEFAULT_NMS };
  const detections: Detection[][] = [];
  const truths: Box[][] = [];
  for (const indices of chunks(options.indices ?? allIndices(set.samples.length), options.batch ?? 8)) {
    const loaded = loadDetectionBatch(set, indices, { height: model.net.input.height, width: model.net.input.width });
    const output = await runNetwork(model, loaded.images, indices.length);
    detections.push(...batchDetections(output, indices.length, layer, detect));
    truths.push(...loaded.boxes);
    await yieldToTimers();
  }
  return { ...meanAveragePrecision(detections, truths, layer.classes, options.iou ?? DEFAULT_MAP_IOU), detections, truths };
}

export async function evaluateClassifier(model: Model, set: ClassificationSet, options: EvaluateOptions = {}): Promise<number> {
  const layer = lossLayer(model.tail);
  if (layer?.kind !== 'softmax') throw new Error(`${model.net.name} has no [softmax] layer: accuracy needs a classifier`);
  const logits: number[] = [];
  const labels: number[] = [];
  let classes = 0;
  for (const indices of chunks(options.indices ?? allIndices(set.samples.length), options.batch ?? 8)) {
    const loaded = loadClassificationBatch(set, indices, { height: model.net.input.height, width: model.net.input.width });
    const output = await runNetwork(model, loaded.images, indices.length);
    classes = output.shape.channels;
    logits.push(...output.values);
    labels.push(...loaded.classIds);
    await yieldToTimers();
  }
  return classificationAccuracy(Float32Array.from(logits), classes, Int32Array.from(labels));
}
