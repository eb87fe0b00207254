// Intersection over union of boxes given by centre and size, as Darknet's box_iou computes it.
// Coordinates may be normalised or in pixels, as long as both boxes use the same ones.

export interface CentreBox {
  readonly cx: number;
  readonly cy: number;
  readonly w: number;
  readonly h: number;
}

/** Length of the overlap of two intervals given by centre and length (negative when apart). */
function overlap(c1: number, l1: number, c2: number, l2: number): number {
  return Math.min(c1 + l1 / 2, c2 + l2 / 2) - Math.max(c1 - l1 / 2, c2 - l2 / 2);
}

export function boxIntersection(a: CentreBox, b: CentreBox): number {
  const w = overlap(a.cx, a.w, b.cx, b.w);
  const h = overlap(a.cy, a.h, b.cy, b.h);
  return w < 0 || h < 0 ? 0 : w * h;
}

/** 0 when either box is empty. */
export function boxIou(a: CentreBox, b: CentreBox): number {
  const intersection = boxIntersection(a, b);
  const union = a.w * a.h + b.w * b.h - intersection;
  return union > 0 ? intersection / union : 0;
}
