// Horizontal bands of a layer's output rows. A tile task computes a big layer a band at a time so
// that the compute heap holds one band's working set, not the whole layer's: the wasm heap never
// shrinks, so its high-water mark is the largest working set it ever held. Pure, so that the compute
// (fused/tile-compute.ts) and the memory estimate (memory/estimate.ts) choose the same bands.
import type { FrontLayer, MapShape } from '../model/layers.js';
import type { FusedRegions } from './fused-regions.js';
import { type Span, regionHeight, regionWidth } from './region.js';

/**
 * Heap bytes a band may keep live besides its layer's filter-sized buffers: a layer is split when
 * its working set would exceed this. At 608x608 (YOLOv2 front, 1 and 4 devices) 8 MiB gave the
 * smallest heap at the same step time (6 MiB: 25% more compute time; 16 MiB: 20% more heap).
 */
export const BAND_BYTES = 8 << 20;
/** Floats of one im2col chunk of the wasm filter-gradient kernel (fused/wasm-kernels/conv2d-backprop-filter.ts). */
export const IM2COL_CHUNK_FLOATS = 1 << 22;
const FLOAT = 4;

export interface BandContext {
  readonly layers: readonly FrontLayer[];
  readonly maps: readonly MapShape[];
  readonly batch: number;
}

/** Input rows (in the layer's padded read region, from 0) that output rows `out` (from 0) read. */
export function bandReadRows(layer: FrontLayer, out: Span): Span {
  return { start: out.start * layer.stride, end: (out.end - 1) * layer.stride + layer.size };
}

/**
 * Bytes live at the worst point of forward or backward of a band of `rows` output rows of `layer`
 * (what tile-compute allocates, phase by phase; the layer's parameters are counted elsewhere).
 * `filterBytes` is the size of one filter-sized buffer, by default the layer's filter; with 0 the
 * result is the part of the working set that bands shrink.
 */
export function bandWorkingSet(ctx: BandContext, regions: FusedRegions, layer: number, rows: number, filterBytes?: number): number {
  const i = layer - regions.firstLayer;
  const l = ctx.layers[layer]!;
  const inChannels = ctx.maps[layer]!.channels;
  const outChannels = ctx.maps[layer + 1]!.channels;
  const inRows = (rows - 1) * l.stride + l.size;
  const floats = (r: number, width: number, channels: number): number => ctx.batch * r * width * channels * FLOAT;
  // A band's input rows; recomputed from a batch-normalized conv's pre-norm stash it is two tensors.
  const previous = ctx.layers[layer - 1];
  const fromPreNorm = layer > regions.firstLayer && previous?.kind === 'conv' && previous.batchNormalize;
  const input = floats(inRows, regionWidth(regions.held[i]!), inChannels);
  const padded = floats(inRows, regionWidth(regions.read[i]!), inChannels);
  const output = floats(rows, regionWidth(regions.held[i + 1]!), outChannels);
  const prepare = Math.max(fromPreNorm ? 2 * input : input, input + padded);
  // Forward: the padded band, then the conv (or pool) output, then the activated output beside it.
  const forward = Math.max(prepare, padded + output, 2 * output);
  if (l.kind === 'maxpool') return Math.max(forward, prepare, padded + 3 * output, padded + output + padded);
  const filter = filterBytes ?? l.size * l.size * inChannels * outChannels * FLOAT;
  // A conv's forward convolves with its own copy of the filter, which XNNPACK packs (from a
  // transposed copy) once for all bands.
  // Backward keeps the padded band throughout: stash and dy give the conv-output gradient, which
  // gives the padded input gradient (beside the rotated filter, XNNPACK's packed copy of it and the
  // copy it packs from) and the filter gradient (an im2col chunk and XNNPACK's packed copy of it, dy
  // transposed and the product).
  const im2col = 2 * FLOAT * Math.min(IM2COL_CHUNK_FLOATS, ctx.batch * rows * regionWidth(regions.held[i + 1]!) * l.size * l.size * inChannels);
  const backward = Math.max(prepare, padded + 3 * output, padded + output + Math.max(padded + 3 * filter, im2col + output + filter));
  return Math.max(forward + 3 * filter, backward);
}

/**
 * The bands of output rows (from 0, over the layer's held output region) for a heap budget: as few
 * as keep the part of each band's working set that bands shrink within `budgetBytes` (one row at
 * least), of near-equal height. (Filter-sized buffers do not shrink with the band: counted against
 * the budget they would cut a deep layer into many bands, each paying them again, for nothing.)
 */
export function layerBands(ctx: BandContext, regions: FusedRegions, layer: number, budgetBytes: number): Span[] {
  const height = regionHeight(regions.held[layer - regions.firstLayer + 1]!);
  // The most rows that fit: the working set grows with the rows.
  let low = 1;
  let high = height;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (bandWorkingSet(ctx, regions, layer, mid, 0) <= budgetBytes) low = mid;
    else high = mid - 1;
  }
  const count = Math.ceil(height / low);
  const rows = Math.ceil(height / count);
  return Array.from({ length: count }, (_, b) => ({ start: b * rows, end: Math.min(height, (b + 1) * rows) }));
}
