// Mean average precision of detections against ground truth, the PASCAL VOC way (devkit 2010+ and
// py-faster-rcnn's voc_eval, which Darknet's reval_voc uses): per class, detections of all images
// by falling score; each is a true positive when its best-overlapping truth of that class in its
// image has IoU above the threshold and was not taken by a higher-scoring detection (no fallback to
// the next-best truth); AP is the area under the precision envelope at every recall point
// ("all-point interpolation", not VOC2007's 11 points). No "difficult" flags; IoU on continuous
// normalised coordinates (no +1 pixel convention).
import type { Box } from '../data/detection-labels.js';
import { boxIou } from './box-iou.js';
import type { Detection } from './region-decode.js';

export const DEFAULT_MAP_IOU = 0.5;

export interface MeanAveragePrecision {
  /** Mean of the classes that have ground truth. */
  readonly map: number;
  /** Per class; null for a class without ground truth (left out of the mean, as it has no recall). */
  readonly perClass: readonly (number | null)[];
}

/** Area under the monotone precision envelope of a precision/recall curve in detection order. */
export function allPointAp(recall: readonly number[], precision: readonly number[]): number {
  const r = [0, ...recall, 1];
  const p = [0, ...precision, 0];
  for (let i = p.length - 2; i >= 0; i--) p[i] = Math.max(p[i]!, p[i + 1]!);
  let area = 0;
  for (let i = 1; i < r.length; i++) area += (r[i]! - r[i - 1]!) * p[i]!;
  return area;
}

function classAp(detections: readonly (readonly Detection[])[], truths: readonly (readonly Box[])[], classId: number, iouThreshold: number): number | null {
  const gts = truths.map((boxes) => boxes.filter((b) => b.classId === classId));
  const positives = gts.reduce((n, g) => n + g.length, 0);
  if (positives === 0) return null;
  const ranked = detections
    .flatMap((dets, image) => dets.filter((d) => d.classId === classId).map((d) => ({ d, image })))
    .map((x, order) => ({ ...x, order }))
    .sort((a, b) => b.d.score - a.d.score || a.order - b.order);
  const taken = gts.map((g) => new Array<boolean>(g.length).fill(false));
  const recall: number[] = [];
  const precision: number[] = [];
  let truePositives = 0;
  ranked.forEach(({ d, image }, k) => {
    let best = -1;
    let bestIou = 0;
    gts[image]!.forEach((g, t) => {
      const iou = boxIou(d, g);
      if (iou > bestIou) [best, bestIou] = [t, iou];
    });
    if (best >= 0 && bestIou > iouThreshold && !taken[image]![best]) {
      taken[image]![best] = true;
      truePositives++;
    }
    recall.push(truePositives / positives);
    precision.push(truePositives / (k + 1));
  });
  return allPointAp(recall, precision);
}

/** `detections[i]` and `truths[i]` belong to image i; boxes in the same (normalised) coordinates. */
export function meanAveragePrecision(
  detections: readonly (readonly Detection[])[], truths: readonly (readonly Box[])[], classes: number, iouThreshold = DEFAULT_MAP_IOU,
): MeanAveragePrecision {
  if (detections.length !== truths.length) throw new Error(`detections for ${detections.length} images but ground truth for ${truths.length}`);
  const perClass = Array.from({ length: classes }, (_, c) => classAp(detections, truths, c, iouThreshold));
  const scored = perClass.filter((ap): ap is number => ap !== null);
  if (scored.length === 0) throw new Error(`no ground-truth boxes in ${truths.length} images: mAP is undefined`);
  return { map: scored.reduce((s, ap) => s + ap, 0) / scored.length, perClass };
}
