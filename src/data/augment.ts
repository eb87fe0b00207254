// Light augmentation for detection and classification: a random crop that moves each side of the
// image inward by up to `jitter` of its size, then a horizontal flip with probability 1/2.
// Boxes follow: clipped to the crop, renormalised, mirrored; boxes left under 0.001 of the
// image wide or high are dropped (Darknet's rule). Off unless asked for: exactness checks need
// the plain images.
import type { Box } from './detection-labels.js';
import type { PixelRect } from './resize.js';
import { wholeImage } from './resize.js';

export interface AugmentOptions {
  /** Largest fraction of the width (height) that the crop may remove on each side, 0..0.5. */
  readonly jitter: number;
  /** Mirror left-right with probability 1/2. */
  readonly flip: boolean;
}

/** What is done to one image: the source rectangle to resample, and whether to mirror it. */
export interface Transform {
  readonly crop: PixelRect;
  readonly flip: boolean;
}

const MIN_BOX_SIZE = 0.001;

export function identityTransform(image: { height: number; width: number }): Transform {
  return { crop: wholeImage(image), flip: false };
}

/** Draws a transform for an image of the given size; the same `random` sequence gives the same transform. */
export function drawTransform(image: { height: number; width: number }, options: AugmentOptions, random: () => number): Transform {
  if (!(options.jitter >= 0 && options.jitter < 0.5)) throw new RangeError(`jitter must be in [0, 0.5), got ${options.jitter}`);
  const cut = (size: number) => Math.floor(random() * options.jitter * size);
  const left = cut(image.width);
  const right = cut(image.width);
  const top = cut(image.height);
  const bottom = cut(image.height);
  const flip = options.flip && random() < 0.5;
  return { crop: { x: left, y: top, width: image.width - left - right, height: image.height - top - bottom }, flip };
}

/** The boxes of an image (normalised to it) after `t`, normalised to the output; boxes are clipped to the image too. */
export function transformBoxes(boxes: readonly Box[], image: { height: number; width: number }, t: Transform): Box[] {
  const { crop } = t;
  const out: Box[] = [];
  for (const b of boxes) {
    const x0 = clip(((b.cx - b.w / 2) * image.width - crop.x) / crop.width);
    const x1 = clip(((b.cx + b.w / 2) * image.width - crop.x) / crop.width);
    const y0 = clip(((b.cy - b.h / 2) * image.height - crop.y) / crop.height);
    const y1 = clip(((b.cy + b.h / 2) * image.height - crop.y) / crop.height);
    if (x1 - x0 < MIN_BOX_SIZE || y1 - y0 < MIN_BOX_SIZE) continue;
    const cx = (x0 + x1) / 2;
    out.push({ classId: b.classId, cx: t.flip ? 1 - cx : cx, cy: (y0 + y1) / 2, w: x1 - x0, h: y1 - y0 });
  }
  return out;
}

const clip = (v: number) => Math.min(Math.max(v, 0), 1);
