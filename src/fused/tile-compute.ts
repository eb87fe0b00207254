// One tile through one fused run of layers, reading and writing arena buffers. Forward computes the
// extended region layer by layer and stashes the least backward needs: a BN conv its pre-norm
// output, any other layer its output (the next layer's input, the sign for the activation, the
// argmax for maxpool). Backward recomputes the rest from the stash with the same ops, bit for bit,
// and back-propagates the gradient of the outputs the tile owns: a partial input gradient over the
// extended region plus this tile's share of every weight gradient.
//
// Each layer reads its input from the arena and writes its results there, a band of output rows at a
// time (tiles/bands.ts): the backend's heap holds one band of one layer, never a whole big map.
// Bands change nothing but the order of float sums where they meet: a conv or pool output element
// is computed from the same inputs by the same kernel whatever band it is in (bit for bit:
// test/fused/bands.test.ts), and the input and weight gradients add up band contributions.
import * as tf from '@tensorflow/tfjs-core';
import type { FrontLayer, MapShape } from '../model/layers.js';
import { BAND_BYTES, bandReadRows, layerBands } from '../tiles/bands.js';
import type { FusedRegions } from '../tiles/fused-regions.js';
import { type Span, margins, regionHeight, regionWidth } from '../tiles/region.js';
import {
  type ComputeParams, type ConvOutputGradients, type LayerTensors, convInputGradient, convOutputBackward, convolve, filterGradientSum,
  maxpoolBackward, maxpoolForward, normalizeActivate, paddingValue, scaleGradient, stashesPreNorm,
} from './layer-ops.js';
import { type MapView, addRows, tensorFromRows, writeRows } from './tensor-io.js';

export interface ComputeContext {
  readonly layers: readonly FrontLayer[];
  readonly maps: readonly MapShape[];
  readonly batch: number;
  readonly params: ComputeParams;
  /** Heap bytes a band may keep live besides filter-sized buffers (default BAND_BYTES); tests lower it. */
  readonly bandBytes?: number;
}

/** Materialise the padding between the held region and the region the layer reads. */
function padToRead(x: tf.Tensor4D, regions: FusedRegions, layer: number, value: number): tf.Tensor4D {
  const i = layer - regions.firstLayer;
  const m = margins(regions.read[i]!, regions.held[i]!);
  if (m.top === 0 && m.bottom === 0 && m.left === 0 && m.right === 0) return x;
  return tf.pad(x, [[0, 0], [m.top, m.bottom], [m.left, m.right], [0, 0]], value);
}

const dispose = (t: tf.Tensor, ...unless: tf.Tensor[]): void => {
  if (!unless.includes(t)) t.dispose();
};

/**
 * Forward through regions.firstLayer..lastLayer from `input` (over regions.held[0], kept) as whole
 * tensors; returns the output over the last held region. The body of the tf.grad reference (and of
 * plain inference): the same layer ops as the tile path, without bands.
 */
export function forwardLayers(
  layers: readonly FrontLayer[],
  params: readonly LayerTensors[],
  regions: FusedRegions,
  input: tf.Tensor4D,
): tf.Tensor4D {
  let x = input;
  for (let l = regions.firstLayer; l <= regions.lastLayer; l++) {
    const layer = layers[l]!;
    const padded = padToRead(x, regions, l, paddingValue(layer));
    let y: tf.Tensor4D;
    if (layer.kind === 'maxpool') y = maxpoolForward(layer, padded);
    else {
      const conv = convolve(layer, params[l]!, padded);
      y = normalizeActivate(layer, params[l]!, conv);
      dispose(conv, y);
    }
    dispose(padded, x);
    dispose(x, input);
    x = y;
  }
  return x;
}

/** Map `map` of the run over its held region, in (the start of) `data`. */
function mapView(ctx: ComputeContext, regions: FusedRegions, map: number, data: Float32Array): MapView {
  const held = regions.held[map - regions.firstLayer]!;
  const shape = [ctx.batch, regionHeight(held), regionWidth(held), ctx.maps[map]!.channels] as const;
  const floats = shape[0] * shape[1] * shape[2] * shape[3];
  if (data.length < floats) throw new Error(`buffer of ${data.length} floats cannot hold map ${map} [${shape.join(', ')}]`);
  return { data: data.subarray(0, floats), shape };
}

const bandsOf = (ctx: ComputeContext, regions: FusedRegions, layer: number): Span[] => layerBands(ctx, regions, layer, ctx.bandBytes ?? BAND_BYTES);

/**
 * Layer `layer`'s input rows that output rows `out` read, with the padding materialised, from the
 * layer's input map: the run's input, or what the previous layer kept (a BN conv's pre-norm output,
 * normalized and activated here, bit for bit as forward did).
 */
function paddedBand(ctx: ComputeContext, regions: FusedRegions, layer: number, input: MapView, out: Span): tf.Tensor4D {
  const i = layer - regions.firstLayer;
  const m = margins(regions.read[i]!, regions.held[i]!);
  const read = bandReadRows(ctx.layers[layer]!, out);
  const rows = { start: Math.max(0, read.start - m.top), end: Math.min(input.shape[1], read.end - m.top) };
  let x = tensorFromRows(input, rows);
  const previous = ctx.layers[layer - 1];
  if (layer > regions.firstLayer && previous?.kind === 'conv' && stashesPreNorm(previous)) {
    const output = normalizeActivate(previous, ctx.params.affine[layer - 1]!, x);
    x.dispose();
    x = output;
  }
  const top = rows.start - (read.start - m.top);
  const bottom = read.end - m.top - rows.end;
  if (top === 0 && bottom === 0 && m.left === 0 && m.right === 0) return x;
  const padded = tf.pad(x, [[0, 0], [top, bottom], [m.left, m.right], [0, 0]], paddingValue(ctx.layers[layer]!));
  x.dispose();
  return padded;
}

export interface ForwardBuffers {
  /** Over regions.held[0]. */
  readonly input: Float32Array;
  /**
   * Per layer, over the layer's held output region: what backward needs (see stashesPreNorm), which
   * the next layer reads as its input. Every layer but the last has one; the last has one when
   * backward reuses this pass.
   */
  readonly stash: (layer: number) => Float32Array | undefined;
  /** Over the last held region (the tile's core of the run's output map); absent for a recompute pass. */
  readonly output?: Float32Array;
}

/** Layer l forward over its held output region, band by band: its stash into `kept`, its output into `output`. */
function forwardLayer(ctx: ComputeContext, regions: FusedRegions, l: number, input: MapView, kept: MapView | undefined, output: MapView | undefined): void {
  const layer = ctx.layers[l]!;
  const t = layer.kind === 'conv' ? { ...ctx.params.affine[l]!, filter: ctx.params.filter(l) } : null;
  for (const band of bandsOf(ctx, regions, l)) {
    const padded = paddedBand(ctx, regions, l, input, band);
    if (layer.kind === 'maxpool') {
      const y = maxpoolForward(layer, padded);
      if (kept) writeRows(y, kept, band.start);
      if (output) writeRows(y, output, band.start);
      tf.dispose([padded, y]);
      continue;
    }
    const conv = convolve(layer, t!, padded);
    padded.dispose();
    const preNorm = stashesPreNorm(layer);
    if (kept && preNorm) writeRows(conv, kept, band.start);
    if (output || (kept && !preNorm)) {
      const y = normalizeActivate(layer, t!, conv);
      if (kept && !preNorm) writeRows(y, kept, band.start);
      if (output) writeRows(y, output, band.start);
      y.dispose();
    }
    conv.dispose();
  }
  ctx.params.release(l);
}

export function forwardTile(ctx: ComputeContext, regions: FusedRegions, buffers: ForwardBuffers): void {
  let input = mapView(ctx, regions, regions.firstLayer, buffers.input);
  for (let l = regions.firstLayer; l <= regions.lastLayer; l++) {
    const stash = buffers.stash(l);
    if (!stash && l < regions.lastLayer) throw new Error(`forward of layer ${l} has no buffer for what the next layer reads`);
    const kept = stash && mapView(ctx, regions, l + 1, stash);
    const output = l === regions.lastLayer && buffers.output ? mapView(ctx, regions, l + 1, buffers.output) : undefined;
    forwardLayer(ctx, regions, l, input, kept, output);
    if (kept) input = kept;
  }
}

export interface BackwardBuffers {
  /** The run's input over regions.held[0] (the first layer's input). */
  readonly input: Float32Array;
  readonly stash: (layer: number) => Float32Array;
  /**
   * Layers whose stash buffer is empty at the start: each is recomputed from the layer's input, the
   * same ops over the same bands as forward (so the same bits), when backward first reads it.
   */
  readonly recompute?: ReadonlySet<number>;
  /** The gradient of the outputs the tile owns, over the last held region (overwritten: see below). */
  readonly outputGradient: Float32Array;
  /** Receives the partial gradient over the held region at map `fromLayer`; absent when not wanted. */
  readonly partial?: Float32Array;
  /**
   * The gradient at map m, fromLayer < m <= lastLayer, over its held region (in the start of the
   * buffer): written by layer m's backward, read by layer m - 1's. The first layer may overwrite its
   * output gradient (this or outputGradient) with the gradient at its conv output.
   */
  readonly gradient: (map: number) => Float32Array;
  /** Per conv layer: filter [k,k,in,out], then biases, then BN scales (the reduction bucket). */
  readonly weightGradient: (layer: number) => Float32Array;
  /** Per conv layer, room for the float64 sums of its filter gradient (else each layer allocates its own). */
  readonly filterSums?: (layer: number) => Float64Array;
}

/**
 * Backward from regions.lastLayer down to `fromLayer`. `onPartial` runs as soon as the partial input
 * gradient is written, before the first layer's filter gradient, so its strips can travel meanwhile.
 */
export function backwardTile(ctx: ComputeContext, regions: FusedRegions, fromLayer: number, buffers: BackwardBuffers, onPartial: () => void): void {
  const map = (m: number, data: Float32Array): MapView => mapView(ctx, regions, m, data);
  let dy = map(regions.lastLayer + 1, buffers.outputGradient);
  const pending = new Set(buffers.recompute);
  const recomputed = (l: number): Float32Array => {
    if (pending.delete(l)) {
      const input = l === regions.firstLayer ? buffers.input : recomputed(l - 1);
      forwardLayer(ctx, regions, l, map(l, input), map(l + 1, buffers.stash(l)), undefined);
    }
    return buffers.stash(l);
  };
  for (let l = regions.lastLayer; l >= fromLayer; l--) {
    const layer = ctx.layers[l]!;
    const input = map(l, l === regions.firstLayer ? buffers.input : recomputed(l - 1));
    const kept = map(l + 1, recomputed(l));
    const bands = bandsOf(ctx, regions, l);
    // The input gradient, summed over bands (their input rows overlap by size - stride).
    const dInputData = l > fromLayer ? buffers.gradient(l) : buffers.partial;
    const dInput = dInputData && map(l, dInputData);
    dInput?.data.fill(0);
    const m = margins(regions.read[l - regions.firstLayer]!, regions.held[l - regions.firstLayer]!);
    const addInputGradient = (dPadded: tf.Tensor4D, band: Span): void => {
      addRows(dPadded, dInput!, bandReadRows(layer, band).start - m.top, -m.left);
      dPadded.dispose();
    };

    if (layer.kind === 'maxpool') {
      if (!dInput) break; // a pool has no weights: nothing is wanted from it
      for (const band of bands) {
        const padded = paddedBand(ctx, regions, l, input, band);
        const output = tensorFromRows(kept, band);
        const d = tensorFromRows(dy, band);
        addInputGradient(maxpoolBackward(layer, padded, output, d), band);
        tf.dispose([padded, output, d]);
      }
      if (l === fromLayer) onPartial();
      dy = dInput;
      continue;
    }

    const t = ctx.params.affine[l]!;
    const target = buffers.weightGradient(l);
    const filterFloats = layer.size * layer.size * input.shape[3] * layer.filters;
    // Band sums add up in float64: a cancelling sum must not collect one float32 rounding per band.
    const biasSums = new Float64Array(layer.filters);
    const productSums = new Float64Array(layer.filters);
    const filterGradient = filterGradientSum(layer, input.shape[3], buffers.filterSums?.(l));
    // A band's padded input and the gradient at its conv output; stash and dy rows are dropped.
    const bandGradients = (band: Span): { padded: tf.Tensor4D; g: ConvOutputGradients } => {
      const padded = paddedBand(ctx, regions, l, input, band);
      const key = tensorFromRows(kept, band);
      const d = tensorFromRows(dy, band);
      const g = convOutputBackward(layer, t, key, d);
      key.dispose();
      dispose(d, g.dConv);
      return { padded, g };
    };
    const addFilterGradient = (padded: tf.Tensor4D, dConv: tf.Tensor4D): void => {
      filterGradient.add(padded, dConv);
      tf.dispose([padded, dConv]);
    };
    // The first layer's filter gradient waits until the partial gradient is complete and on its way.
    // A single band's tensors are kept meanwhile; over several bands each band's conv-output gradient
    // replaces its rows of dy (which nothing reads again), as Darknet overwrites its delta.
    const deferFilter = l === fromLayer && dInput !== undefined;
    const gradientFilter = dInput && ctx.params.gradientFilter(l);
    let single: { padded: tf.Tensor4D; dConv: tf.Tensor4D } | null = null;
    for (const band of bands) {
      const { padded, g } = bandGradients(band);
      for (let c = 0; c < layer.filters; c++) {
        biasSums[c] = biasSums[c]! + g.biasSums[c]!;
        if (g.productSums) productSums[c] = productSums[c]! + g.productSums[c]!;
      }
      if (gradientFilter) addInputGradient(convInputGradient(layer, gradientFilter, g.dConv, padded.shape), band);
      if (!deferFilter) addFilterGradient(padded, g.dConv);
      else if (bands.length === 1) single = { padded, dConv: g.dConv };
      else {
        writeRows(g.dConv, dy, band.start);
        tf.dispose([padded, g.dConv]);
      }
    }
    target.set(biasSums, filterFloats);
    if (layer.batchNormalize) target.set(scaleGradient(t, biasSums, productSums), filterFloats + layer.filters);
    if (deferFilter) {
      onPartial();
      if (single) addFilterGradient(single.padded, single.dConv);
      else {
        for (const band of bands) addFilterGradient(paddedBand(ctx, regions, l, input, band), tensorFromRows(dy, band));
      }
    }
    filterGradient.writeTo(target);
    ctx.params.release(l);
    if (dInput) dy = dInput;
  }
}
