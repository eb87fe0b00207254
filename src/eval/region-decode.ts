// Boxes from a region's raw predictions, as Darknet's get_region_boxes computes them: centre
// (cell + logistic(x, y)) / grid, size exp(w, h) * anchor / grid, and per class the probability
// logistic(objectness) * softmax(class logits). Boxes are normalised to the image.
import type { MapShape } from '../model/layers.js';
import { type RegionLayer, regionEntries } from '../model/tail-layers.js';
import type { CentreBox } from './box-iou.js';

export interface Detection extends CentreBox {
  readonly classId: number;
  /** objectness x class probability. */
  readonly score: number;
}

const logistic = (x: number): number => 1 / (1 + Math.exp(-x));

/**
 * Detections of one image whose score exceeds `thresh` (Darknet keeps prob > thresh): one per box and
 * class, so a box may be reported for two classes. `raw` holds the image's [H, W, anchors * (5 + classes)].
 */
export function decodeRegion(raw: Float32Array, grid: MapShape, layer: RegionLayer, thresh: number): Detection[] {
  const entries = regionEntries(layer);
  const num = layer.anchors.length;
  if (raw.length !== grid.height * grid.width * num * entries) {
    throw new Error(`a ${grid.height}x${grid.width} region with ${num} anchors and ${layer.classes} classes has ${grid.height * grid.width * num * entries} values, got ${raw.length}`);
  }
  const detections: Detection[] = [];
  const probabilities = new Float64Array(layer.classes);
  for (let j = 0; j < grid.height; j++) {
    for (let i = 0; i < grid.width; i++) {
      for (let n = 0; n < num; n++) {
        const at = ((j * grid.width + i) * num + n) * entries;
        const objectness = logistic(raw[at + 4]!);
        softmaxInto(raw, at + 5, probabilities);
        const box = {
          cx: (i + logistic(raw[at]!)) / grid.width,
          cy: (j + logistic(raw[at + 1]!)) / grid.height,
          w: (Math.exp(raw[at + 2]!) * layer.anchors[n]!.w) / grid.width,
          h: (Math.exp(raw[at + 3]!) * layer.anchors[n]!.h) / grid.height,
        };
        probabilities.forEach((p, classId) => {
          const score = objectness * p;
          if (score > thresh) detections.push({ ...box, classId, score });
        });
      }
    }
  }
  return detections;
}

function softmaxInto(raw: Float32Array, from: number, out: Float64Array): void {
  let max = -Infinity;
  for (let c = 0; c < out.length; c++) max = Math.max(max, raw[from + c]!);
  let sum = 0;
  for (let c = 0; c < out.length; c++) {
    out[c] = Math.exp(raw[from + c]! - max);
    sum += out[c]!;
  }
  for (let c = 0; c < out.length; c++) out[c] = out[c]! / sum;
}
