// One tile through one fused run of layers, reading and writing arena buffers. Forward computes the
// extended region layer by layer and stashes the least backward needs: a BN conv its pre-norm
// output, any other layer its output (the next layer's input, the sign for the activation, the
// argmax for maxpool). Backward recomputes the rest from the stash with the same ops, bit for bit,
// and back-propagates the gradient of the outputs the tile owns: a partial input gradient over the
// extended region plus this tile's share of every weight gradient. The backend's heap then holds
// one layer's working set at a time; everything that outlives a layer lives in the arenas.
import * as tf from '@tensorflow/tfjs-core';
import type { FrontLayer, MapShape } from '../model/layers.js';
import type { FusedRegions } from '../tiles/fused-regions.js';
import { type Region, margins, regionHeight, regionWidth } from '../tiles/region.js';
import {
  type LayerTensors, convFilterGradient, convInputGradient, convOutputBackward, convolve, maxpoolBackward, maxpoolForward,
  normalizeActivate, paddingValue, stashesPreNorm,
} from './layer-ops.js';
import { tensorFromView, writeTensor } from './tensor-io.js';

export interface ComputeContext {
  readonly layers: readonly FrontLayer[];
  readonly maps: readonly MapShape[];
  readonly batch: number;
  readonly params: readonly LayerTensors[];
}

/** Materialise the padding between the held region and the region the layer reads. */
function padToRead(x: tf.Tensor4D, regions: FusedRegions, layer: number, value: number): tf.Tensor4D {
  const i = layer - regions.firstLayer;
  const m = margins(regions.read[i]!, regions.held[i]!);
  if (m.top === 0 && m.bottom === 0 && m.left === 0 && m.right === 0) return x;
  return tf.pad(x, [[0, 0], [m.top, m.bottom], [m.left, m.right], [0, 0]], value);
}

/** Drop the padding again: the adjoint of padToRead. */
function cropToHeld(dPadded: tf.Tensor4D, regions: FusedRegions, layer: number): tf.Tensor4D {
  const i = layer - regions.firstLayer;
  const held = regions.held[i]!;
  const m = margins(regions.read[i]!, held);
  if (m.top === 0 && m.bottom === 0 && m.left === 0 && m.right === 0) return dPadded;
  return tf.slice(dPadded, [0, m.top, m.left, 0], [-1, regionHeight(held), regionWidth(held), -1]);
}

const dispose = (t: tf.Tensor, ...unless: tf.Tensor[]): void => {
  if (!unless.includes(t)) t.dispose();
};

/**
 * Forward through regions.firstLayer..lastLayer from `input` (over regions.held[0], kept). Hands
 * each layer's stash tensor to `keep` (valid only during the call) and returns the output over the
 * last held region. Also the body of the tf.grad reference, so tiles and reference run the same ops.
 */
export function forwardLayers(
  layers: readonly FrontLayer[],
  params: readonly LayerTensors[],
  regions: FusedRegions,
  input: tf.Tensor4D,
  keep?: (layer: number, stashed: tf.Tensor4D) => void,
): tf.Tensor4D {
  let x = input;
  for (let l = regions.firstLayer; l <= regions.lastLayer; l++) {
    const layer = layers[l]!;
    const padded = padToRead(x, regions, l, paddingValue(layer));
    let y: tf.Tensor4D;
    if (layer.kind === 'maxpool') {
      y = maxpoolForward(layer, padded);
      keep?.(l, y);
    } else {
      const conv = convolve(layer, params[l]!, padded);
      y = normalizeActivate(layer, params[l]!, conv);
      keep?.(l, stashesPreNorm(layer) ? conv : y);
      dispose(conv, y);
    }
    dispose(padded, x);
    dispose(x, input);
    x = y;
  }
  return x;
}

export const regionShape = (ctx: ComputeContext, map: number, region: Region): number[] =>
  [ctx.batch, regionHeight(region), regionWidth(region), ctx.maps[map]!.channels];

export interface ForwardBuffers {
  /** Over regions.held[0]. */
  readonly input: Float32Array;
  /** Per layer, over the layer's held output region; absent when nothing is kept for backward. */
  readonly stash?: (layer: number) => Float32Array;
  /** Over the last held region (the tile's core of the run's output map); absent for a recompute pass. */
  readonly output?: Float32Array;
}

export function forwardTile(ctx: ComputeContext, regions: FusedRegions, buffers: ForwardBuffers): void {
  const input = tensorFromView(buffers.input, regionShape(ctx, regions.firstLayer, regions.held[0]!));
  const stash = buffers.stash;
  const output = forwardLayers(ctx.layers, ctx.params, regions, input, stash && ((l, t) => writeTensor(t, stash(l))));
  if (buffers.output) writeTensor(output, buffers.output);
  dispose(output, input);
  input.dispose();
}

export interface BackwardBuffers {
  /** The run's input over regions.held[0] (the first layer's input). */
  readonly input: Float32Array;
  readonly stash: (layer: number) => Float32Array;
  /** The gradient of the outputs the tile owns, over the last held region. */
  readonly outputGradient: Float32Array;
  /** Receives the partial gradient over the held region at map `fromLayer`; absent when not wanted. */
  readonly partial?: Float32Array;
  /** Per conv layer: filter [k,k,in,out], then biases, then BN scales (the reduction bucket). */
  readonly weightGradient: (layer: number) => Float32Array;
}

/**
 * Backward from regions.lastLayer down to `fromLayer`. `onPartial` runs as soon as the partial input
 * gradient is written, before the first layer's filter gradient, so its strips can travel meanwhile.
 */
export function backwardTile(ctx: ComputeContext, regions: FusedRegions, fromLayer: number, buffers: BackwardBuffers, onPartial: () => void): void {
  const { layers, params } = ctx;
  const heldShape = (l: number): number[] => regionShape(ctx, l, regions.held[l - regions.firstLayer]!);
  const stashed = (l: number): tf.Tensor4D => tensorFromView(buffers.stash(l), heldShape(l + 1));
  // A layer's input: the run's input, or the previous layer's output recomputed from its stash.
  const layerInput = (l: number): tf.Tensor4D => {
    if (l === regions.firstLayer) return tensorFromView(buffers.input, heldShape(l));
    const previous = layers[l - 1]!;
    const kept = stashed(l - 1);
    if (!stashesPreNorm(previous) || previous.kind !== 'conv') return kept;
    const output = normalizeActivate(previous, params[l - 1]!, kept);
    kept.dispose();
    return output;
  };

  let dy = tensorFromView(buffers.outputGradient, heldShape(regions.lastLayer + 1));
  for (let l = regions.lastLayer; l >= fromLayer; l--) {
    const layer = layers[l]!;
    const wantInput = l > fromLayer || buffers.partial !== undefined;
    const input = layerInput(l);
    const padded = padToRead(input, regions, l, paddingValue(layer));
    let dPadded: tf.Tensor4D | null = null;
    let afterPartial = (): void => undefined;
    if (layer.kind === 'maxpool') {
      const output = stashed(l);
      dPadded = maxpoolBackward(layer, padded, output, dy);
      output.dispose();
    } else {
      const t = params[l]!;
      const key = stashed(l);
      const g = convOutputBackward(layer, t, key, dy);
      key.dispose();
      if (wantInput) dPadded = convInputGradient(layer, t, g.dConv, padded.shape);
      const target = buffers.weightGradient(l);
      // The filter gradient waits until the partial gradient is on its way (first layer) or runs now.
      afterPartial = () => {
        const dFilter = convFilterGradient(layer, t, padded, g.dConv);
        writeTensor(dFilter, target, 0);
        writeTensor(g.dBiases, target, dFilter.size);
        if (g.dScales) writeTensor(g.dScales, target, dFilter.size + g.dBiases.size);
        tf.dispose([dFilter, g.dBiases, ...(g.dScales ? [g.dScales] : [])]);
        dispose(g.dConv, dy);
      };
    }
    dispose(input, padded);
    const dInput = dPadded && cropToHeld(dPadded, regions, l);
    if (dPadded) dispose(dPadded, dInput!);
    if (l === fromLayer && dInput && buffers.partial) {
      writeTensor(dInput, buffers.partial);
      onPartial();
    }
    afterPartial();
    padded.dispose();
    dy.dispose();
    dy = dInput ?? dy;
    if (!dInput) break;
  }
  if (!dy.isDisposed) dy.dispose();
}
