// Darknet's forward_region_layer written out again as loops that write a delta array, in Darknet's
// order with its overwrites, independently of src/train/region-*.ts: its own IoU (from corners), its
// own activations, one index function. The logistic gradient is applied to the x, y and objectness
// deltas as Darknet's backward_region_layer_gpu does, unless logistic_gradient=0 (the deltas as
// they are, as YOLOv3's yolo layer). Also the loss whose gradient is -delta.
import type { Box } from '../../src/data/detection-labels.js';
import type { RegionLayer } from '../../src/model/tail-layers.js';

export interface DarknetRegion {
  /** Darknet's delta (minus the gradient) w.r.t. the region's input, NHWC like the input. */
  readonly delta: Float32Array;
  readonly loss: number;
  /** Predictions whose no-object term was dropped because they overlap a truth above thresh. */
  readonly ignored: number;
  /** Truths whose anchor an earlier truth of the same image had already taken. */
  readonly replaced: number;
  /** How often the anchor chosen differs from the one the anchors' own shapes alone would pick. */
  readonly shapeChoiceDiffers: number;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function iou(a: { cx: number; cy: number; w: number; h: number }, b: { cx: number; cy: number; w: number; h: number }): number {
  const [ax1, ay1, ax2, ay2] = [a.cx - a.w / 2, a.cy - a.h / 2, a.cx + a.w / 2, a.cy + a.h / 2];
  const [bx1, by1, bx2, by2] = [b.cx - b.w / 2, b.cy - b.h / 2, b.cx + b.w / 2, b.cy + b.h / 2];
  const iw = Math.min(ax2, bx2) - Math.max(ax1, bx1);
  const ih = Math.min(ay2, by2) - Math.max(ay1, by1);
  if (iw < 0 || ih < 0) return 0;
  const inter = iw * ih;
  return inter / ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter);
}

export function darknetRegion(
  z: Float32Array, batch: number, h: number, w: number, l: RegionLayer, truths: readonly (readonly Box[])[], seenAfterBatch?: number,
): DarknetRegion {
  const num = l.anchors.length;
  const size = 5 + l.classes;
  const index = (b: number, j: number, i: number, n: number) => ((b * h + j) * w + i) * num * size + n * size;
  // Darknet's forward output: logistic x, y, objectness; softmax over the classes.
  const out = Float32Array.from(z);
  for (let a = 0; a < batch * h * w * num; a++) {
    const at = a * size;
    out[at] = sigmoid(z[at]!);
    out[at + 1] = sigmoid(z[at + 1]!);
    out[at + 4] = sigmoid(z[at + 4]!);
    let max = -Infinity;
    for (let c = 0; c < l.classes; c++) max = Math.max(max, z[at + 5 + c]!);
    let sum = 0;
    for (let c = 0; c < l.classes; c++) sum += Math.exp(z[at + 5 + c]! - max);
    for (let c = 0; c < l.classes; c++) out[at + 5 + c] = Math.exp(z[at + 5 + c]! - max) / sum;
  }
  const delta = new Float32Array(z.length);
  const lossOf = new Float64Array(z.length); // the loss term each entry ends with
  const classLoss = new Float64Array(batch * h * w * num);
  const box = (at: number, i: number, j: number, n: number) => ({
    cx: (i + out[at]!) / w, cy: (j + out[at + 1]!) / h,
    w: (Math.exp(z[at + 2]!) * l.anchors[n]!.w) / w, h: (Math.exp(z[at + 3]!) * l.anchors[n]!.h) / h,
  });
  // With the logistic's gradient the term is a squared error of the logistic; without, its
  // cross-entropy less the target's entropy (zero at a perfect prediction).
  const logisticDelta = (target: number, p: number): number => (l.logisticGradient ? (target - p) * p * (1 - p) : target - p);
  const logisticLoss = (target: number, p: number): number => {
    if (l.logisticGradient) return 0.5 * (target - p) ** 2;
    const plogq = (a: number, b: number): number => (a === 0 ? 0 : a * Math.log(b));
    return -plogq(target, p) - plogq(1 - target, 1 - p) + plogq(target, target) + plogq(1 - target, 1 - target);
  };
  const deltaBox = (truth: { cx: number; cy: number; w: number; h: number }, at: number, i: number, j: number, n: number, scale: number) => {
    const t = [truth.cx * w - i, truth.cy * h - j, Math.log((truth.w * w) / l.anchors[n]!.w), Math.log((truth.h * h) / l.anchors[n]!.h)];
    for (const k of [0, 1]) {
      delta[at + k] = scale * logisticDelta(t[k]!, out[at + k]!);
      lossOf[at + k] = scale * logisticLoss(t[k]!, out[at + k]!);
    }
    for (const k of [2, 3]) {
      delta[at + k] = scale * (t[k]! - z[at + k]!);
      lossOf[at + k] = 0.5 * scale * (t[k]! - z[at + k]!) ** 2;
    }
  };
  const deltaObj = (at: number, scale: number, target: number) => {
    delta[at + 4] = scale * logisticDelta(target, out[at + 4]!);
    lossOf[at + 4] = scale * logisticLoss(target, out[at + 4]!);
  };
  let ignored = 0;
  let replaced = 0;
  let shapeChoiceDiffers = 0;
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < h; j++) {
      for (let i = 0; i < w; i++) {
        for (let n = 0; n < num; n++) {
          const at = index(b, j, i, n);
          const pred = box(at, i, j, n);
          let best = 0;
          for (const t of truths[b]!) best = Math.max(best, iou(pred, t));
          deltaObj(at, l.noobjectScale, 0);
          if (best > l.thresh) {
            delta[at + 4] = 0;
            lossOf[at + 4] = 0;
            ignored++;
          }
          if (seenAfterBatch !== undefined && seenAfterBatch < 12800) {
            deltaBox({ cx: (i + 0.5) / w, cy: (j + 0.5) / h, w: l.anchors[n]!.w / w, h: l.anchors[n]!.h / h }, at, i, j, n, 0.01);
          }
        }
      }
    }
    const taken = new Set<number>();
    for (const truth of truths[b]!) {
      const i = Math.min(Math.floor(truth.cx * w), w - 1);
      const j = Math.min(Math.floor(truth.cy * h), h - 1);
      let bestIou = 0;
      let bestN = 0;
      let bestAnchorOnly = 0;
      let bestAnchorOnlyIou = 0;
      for (let n = 0; n < num; n++) {
        const pred = box(index(b, j, i, n), i, j, n);
        const anchorShape = { cx: 0, cy: 0, w: l.anchors[n]!.w / w, h: l.anchors[n]!.h / h };
        const shape = l.biasMatch ? anchorShape : { cx: 0, cy: 0, w: pred.w, h: pred.h };
        const truthShape = { cx: 0, cy: 0, w: truth.w, h: truth.h };
        const v = iou(shape, truthShape);
        if (v > bestIou) [bestIou, bestN] = [v, n];
        const u = iou(anchorShape, truthShape);
        if (u > bestAnchorOnlyIou) [bestAnchorOnlyIou, bestAnchorOnly] = [u, n];
      }
      if (bestN !== bestAnchorOnly) shapeChoiceDiffers++;
      const at = index(b, j, i, bestN);
      if (taken.has(at)) replaced++;
      taken.add(at);
      deltaBox(truth, at, i, j, bestN, l.coordScale * (2 - truth.w * truth.h));
      const overlap = iou(box(at, i, j, bestN), truth);
      deltaObj(at, l.objectScale, l.rescore ? overlap : 1);
      for (let c = 0; c < l.classes; c++) delta[at + 5 + c] = l.classScale * ((c === truth.classId ? 1 : 0) - out[at + 5 + c]!);
      classLoss[at / size] = -l.classScale * Math.log(out[at + 5 + truth.classId]!);
    }
  }
  const loss = lossOf.reduce((s, v) => s + v, 0) + classLoss.reduce((s, v) => s + v, 0);
  return { delta, loss, ignored, replaced, shapeChoiceDiffers };
}
