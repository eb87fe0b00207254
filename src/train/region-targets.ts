// What Darknet's forward_region_layer decides from the current predictions before it writes its
// deltas: which predictions get the no-object term, which anchor is responsible for each truth,
// and the targets of every term. Plain JS over a copy of the region's input, so that autodiff sees
// the result only as constants (the IoU-based choices are not differentiated, as in Darknet).
//
// Each entry's final term is the one Darknet's last write leaves there: the no-object term, then
// the early-training prior, then, truth by truth in order, the responsible anchor's box, objectness
// and class terms (a later truth at the same anchor replaces an earlier one).
import type { Box } from '../data/detection-labels.js';
import { type CentreBox, boxIou } from '../eval/box-iou.js';
import type { MapShape } from '../model/layers.js';
import { type RegionLayer, regionEntries } from '../model/tail-layers.js';

/** Darknet adds its prior term while fewer images than this have been seen. */
export const PRIOR_IMAGES = 12800;
const PRIOR_SCALE = 0.01;
/** Entries with a squared-error term per anchor: x, y, w, h, objectness. */
export const BOX_TERMS = 5;
const OBJECTNESS = 4;

export interface RegionTargets {
  /**
   * [batch, H, W, anchors, 5] for x, y, w, h, objectness: the term is 0.5 * weight * (a - target)^2
   * with a = logistic(input) for x, y and objectness and a = input for w and h. Weight 0: no term.
   */
  readonly weight: Float32Array;
  readonly target: Float32Array;
  /** [batch, H, W, anchors, classes]: class_scale times the one-hot class of responsible anchors, else 0. */
  readonly classWeight: Float32Array;
}

export interface RegionTargetOptions {
  /**
   * Images trained on before this batch. While fewer than PRIOR_IMAGES (this batch included) have
   * been seen, every prediction is pulled towards its cell's centre and its anchor's shape (Darknet's
   * prior term). Absent: no prior term.
   */
  readonly imagesSeen?: number;
}

const logistic = (x: number): number => 1 / (1 + Math.exp(-x));

/** Checks boxes against the region: a bad truth would silently train on nonsense. */
export function checkTruths(truths: readonly (readonly Box[])[], batch: number, classes: number): void {
  if (truths.length !== batch) throw new Error(`the region got boxes for ${truths.length} images, the batch has ${batch}`);
  truths.forEach((boxes, b) => boxes.forEach((box, t) => {
    const where = `box ${t} of image ${b}`;
    if (!Number.isInteger(box.classId) || box.classId < 0 || box.classId >= classes) throw new Error(`${where} has class ${box.classId}, outside the region's ${classes} classes`);
    if (!(box.cx >= 0 && box.cx <= 1 && box.cy >= 0 && box.cy <= 1)) throw new Error(`${where} has its centre at (${box.cx}, ${box.cy}), outside the image (0..1)`);
    if (!(box.w > 0 && box.w <= 1 && box.h > 0 && box.h <= 1)) throw new Error(`${where} has size ${box.w}x${box.h}, not in (0, 1]`);
  }));
}

/** Darknet's predicted box of anchor n at cell (i, j), normalised to the image. */
function predictedBox(z: Float32Array, at: number, i: number, j: number, grid: MapShape, layer: RegionLayer, n: number): CentreBox {
  return {
    cx: (i + logistic(z[at]!)) / grid.width,
    cy: (j + logistic(z[at + 1]!)) / grid.height,
    w: (Math.exp(z[at + 2]!) * layer.anchors[n]!.w) / grid.width,
    h: (Math.exp(z[at + 3]!) * layer.anchors[n]!.h) / grid.height,
  };
}

/**
 * Targets of the region loss for `z`, the region's input [batch, H, W, anchors * (5 + classes)] as
 * NHWC floats, against `truths` (boxes per image, normalised).
 */
export function regionTargets(
  z: Float32Array, grid: MapShape, batch: number, layer: RegionLayer, truths: readonly (readonly Box[])[], options: RegionTargetOptions = {},
): RegionTargets {
  checkTruths(truths, batch, layer.classes);
  const num = layer.anchors.length;
  const entries = regionEntries(layer);
  const cells = grid.height * grid.width;
  if (z.length !== batch * cells * num * entries) throw new Error(`the region got ${z.length} inputs, a ${batch}x${grid.height}x${grid.width}x${num * entries} map has ${batch * cells * num * entries}`);
  const weight = new Float32Array(batch * cells * num * BOX_TERMS);
  const target = new Float32Array(weight.length);
  const classWeight = new Float32Array(batch * cells * num * layer.classes);
  const prior = options.imagesSeen !== undefined && options.imagesSeen + batch < PRIOR_IMAGES;
  /** Index of anchor n at cell (i, j) of image b, counted in anchors. */
  const anchorAt = (b: number, j: number, i: number, n: number): number => ((b * grid.height + j) * grid.width + i) * num + n;
  const setBox = (a: number, scale: number, tx: number, ty: number, tw: number, th: number): void => {
    weight.fill(scale, a * BOX_TERMS, a * BOX_TERMS + 4);
    target.set([tx, ty, tw, th], a * BOX_TERMS);
  };

  for (let b = 0; b < batch; b++) {
    const boxes = truths[b]!;
    for (let j = 0; j < grid.height; j++) {
      for (let i = 0; i < grid.width; i++) {
        for (let n = 0; n < num; n++) {
          const a = anchorAt(b, j, i, n);
          const pred = predictedBox(z, a * entries, i, j, grid, layer, n);
          const bestIou = boxes.reduce((best, truth) => Math.max(best, boxIou(pred, truth)), 0);
          // No object here unless the prediction already overlaps a truth well enough.
          weight[a * BOX_TERMS + OBJECTNESS] = bestIou > layer.thresh ? 0 : layer.noobjectScale;
          target[a * BOX_TERMS + OBJECTNESS] = 0;
          // Early training: towards the cell's centre (offset 0.5) and the anchor's shape (log 1 = 0).
          if (prior) setBox(a, PRIOR_SCALE, 0.5, 0.5, 0, 0);
        }
      }
    }
    for (const truth of boxes) {
      // A centre on the far edge (cx = 1) belongs to the last cell, not to one past the map.
      const i = Math.min(Math.floor(truth.cx * grid.width), grid.width - 1);
      const j = Math.min(Math.floor(truth.cy * grid.height), grid.height - 1);
      const shape = { cx: 0, cy: 0, w: truth.w, h: truth.h };
      let bestN = 0;
      let bestShapeIou = 0;
      for (let n = 0; n < num; n++) {
        const pred = layer.biasMatch
          ? { w: layer.anchors[n]!.w / grid.width, h: layer.anchors[n]!.h / grid.height }
          : predictedBox(z, anchorAt(b, j, i, n) * entries, i, j, grid, layer, n);
        const iou = boxIou({ cx: 0, cy: 0, w: pred.w, h: pred.h }, shape);
        if (iou > bestShapeIou) {
          bestShapeIou = iou;
          bestN = n;
        }
      }
      const a = anchorAt(b, j, i, bestN);
      const anchor = layer.anchors[bestN]!;
      setBox(a, layer.coordScale * (2 - truth.w * truth.h),
        truth.cx * grid.width - i, truth.cy * grid.height - j,
        Math.log((truth.w * grid.width) / anchor.w), Math.log((truth.h * grid.height) / anchor.h));
      const iou = boxIou(predictedBox(z, a * entries, i, j, grid, layer, bestN), truth);
      weight[a * BOX_TERMS + OBJECTNESS] = layer.objectScale;
      target[a * BOX_TERMS + OBJECTNESS] = layer.rescore ? iou : 1;
      classWeight.fill(0, a * layer.classes, (a + 1) * layer.classes);
      classWeight[a * layer.classes + truth.classId] = layer.classScale;
    }
  }
  return { weight, target, classWeight };
}
