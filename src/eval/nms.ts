// Greedy non-maximum suppression per class, as Darknet's do_nms_sort: within a class, by falling
// score, a detection is dropped when its IoU with a kept one exceeds the threshold.
import { boxIou } from './box-iou.js';
import type { Detection } from './region-decode.js';

/** Darknet's default for `detector test`. */
export const DEFAULT_NMS = 0.45;

/** The kept detections, by falling score (ties keep their input order). */
export function nmsPerClass(detections: readonly Detection[], iouThreshold = DEFAULT_NMS): Detection[] {
  const sorted = detections.map((d, order) => ({ d, order })).sort((a, b) => b.d.score - a.d.score || a.order - b.order).map((x) => x.d);
  const kept: Detection[] = [];
  for (const candidate of sorted) {
    const suppressed = kept.some((k) => k.classId === candidate.classId && boxIou(k, candidate) > iouThreshold);
    if (!suppressed) kept.push(candidate);
  }
  return kept;
}
