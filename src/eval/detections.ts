// Final detections of a batch of region outputs: decoded, thresholded, then per-class NMS.
import type { RegionLayer } from '../model/tail-layers.js';
import { DEFAULT_NMS, nmsPerClass } from './nms.js';
import { type Detection, decodeRegion } from './region-decode.js';
import type { NetworkOutput } from './run-network.js';

/** `edge detect`'s default, Darknet's `detector test` default. */
export const DEFAULT_DETECT_THRESH = 0.25;
/** Darknet's `detector valid`/`map` threshold: keep nearly everything, so the PR curve is complete. */
export const EVAL_THRESH = 0.005;

export interface DetectOptions {
  /** Keep detections scoring above this. */
  readonly thresh: number;
  /** NMS IoU threshold. */
  readonly nms: number;
}

/** Detections per image of `output` (a region's input for `batch` images), normalised boxes. */
export function batchDetections(output: NetworkOutput, batch: number, layer: RegionLayer, options: DetectOptions = { thresh: DEFAULT_DETECT_THRESH, nms: DEFAULT_NMS }): Detection[][] {
  const perImage = output.shape.height * output.shape.width * output.shape.channels;
  if (output.values.length !== batch * perImage) throw new Error(`region output has ${output.values.length} values, ${batch} images of ${perImage} need ${batch * perImage}`);
  return Array.from({ length: batch }, (_, b) =>
    nmsPerClass(decodeRegion(output.values.subarray(b * perImage, (b + 1) * perImage), output.shape, layer, options.thresh), options.nms));
}
