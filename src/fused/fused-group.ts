// One tile through one fused run of layers: forward on the extended region (keeping what backward
// needs), and backward of the gradient of the outputs the tile owns, which yields a partial input
// gradient over the extended region plus this tile's share of every weight gradient.
import * as tf from '@tensorflow/tfjs';
import type { FrontLayer } from '../model/layers.js';
import type { FusedRegions } from '../tiles/fused-regions.js';
import { margins, regionHeight, regionWidth } from '../tiles/region.js';
import {
  type ConvForward, type LayerTensors, convBackward, convForward, maxpoolBackward, maxpoolForward, paddingValue,
} from './layer-ops.js';

/** What one layer's backward needs: its input (unpadded: padding is re-materialised in backward) and outputs. */
export interface LayerStash {
  readonly input: tf.Tensor4D;
  readonly forward: ConvForward;
}

export interface FusedStash {
  readonly regions: FusedRegions;
  /** The run's input (over regions.held[0]); owned by the stash. */
  readonly input: tf.Tensor4D;
  /** Indexed by layer - regions.firstLayer. */
  readonly layers: LayerStash[];
}

export interface WeightGradient {
  readonly dFilter: tf.Tensor4D;
  readonly dBiases: tf.Tensor1D;
  readonly dScales?: tf.Tensor1D;
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

/**
 * Forward through regions.firstLayer..lastLayer. `input` holds regions.held[0]. Returns the output
 * over the last held region and, when `keep`, the stash for backward, which then owns `input` and
 * `output`. Without `keep`, the caller still owns `input` and owns `output`.
 */
export function forwardFused(
  layers: readonly FrontLayer[],
  params: readonly LayerTensors[],
  regions: FusedRegions,
  input: tf.Tensor4D,
  keep: boolean,
): { output: tf.Tensor4D; stash: FusedStash | null } {
  const stash: LayerStash[] = [];
  let x = input;
  for (let l = regions.firstLayer; l <= regions.lastLayer; l++) {
    const layer = layers[l]!;
    const current = x;
    const [padded, output, preNorm] = tf.tidy(() => {
      const padded = padToRead(current, regions, l, paddingValue(layer));
      if (layer.kind === 'maxpool') return [padded, maxpoolForward(layer, padded)];
      const f = convForward(layer, params[l]!, padded, keep);
      return f.preNorm ? [padded, f.output, f.preNorm] : [padded, f.output];
    }) as tf.Tensor4D[];
    const forward: ConvForward = preNorm ? { output: output!, preNorm } : { output: output! };
    if (padded !== current) padded!.dispose();
    if (keep) stash.push({ input: current, forward });
    else if (current !== input) current.dispose();
    x = forward.output;
  }
  return { output: x, stash: keep ? { regions, input, layers: stash } : null };
}

/** Disposes every tensor of the stash (some are shared between layers; disposing twice is a no-op). */
export function disposeStash(stash: FusedStash): void {
  stash.input.dispose();
  for (const s of stash.layers) tf.dispose([s.input, s.forward.output, ...(s.forward.preNorm ? [s.forward.preNorm] : [])]);
}

/**
 * Backward from the gradient `dOutput` of the outputs this tile owns (over the last held region) down
 * to layer `fromLayer`. Returns the partial gradient over the held region at map `fromLayer` (when
 * wanted) and the weight gradients of every conv layer in fromLayer..lastLayer.
 */
export function backwardFused(
  layers: readonly FrontLayer[],
  params: readonly LayerTensors[],
  stash: FusedStash,
  fromLayer: number,
  dOutput: tf.Tensor4D,
  wantInputGradient: boolean,
): { dInput: tf.Tensor4D | null; weights: Map<number, WeightGradient> } {
  const { regions } = stash;
  const weights = new Map<number, WeightGradient>();
  let dy = dOutput;
  for (let l = regions.lastLayer; l >= fromLayer; l--) {
    const layer = layers[l]!;
    const saved = stash.layers[l - regions.firstLayer]!;
    const needInput = l > fromLayer || wantInputGradient;
    const upstream = dy;
    const dInput = tf.tidy(() => {
      const paddedInput = padToRead(saved.input, regions, l, paddingValue(layer));
      if (layer.kind === 'maxpool') return cropToHeld(maxpoolBackward(layer, paddedInput, saved.forward.output, upstream), regions, l);
      const g = convBackward(layer, params[l]!, paddedInput, saved.forward, upstream, needInput);
      tf.keep(g.dFilter);
      tf.keep(g.dBiases);
      if (g.dScales) tf.keep(g.dScales);
      weights.set(l, g.dScales ? { dFilter: g.dFilter, dBiases: g.dBiases, dScales: g.dScales } : { dFilter: g.dFilter, dBiases: g.dBiases });
      // A tidy must return a tensor; the empty one is dropped right below.
      return g.dInput ? cropToHeld(g.dInput, regions, l) : tf.zeros([0, 0, 0, 0]) as tf.Tensor4D;
    });
    if (upstream !== dOutput) upstream.dispose();
    dy = dInput;
    if (!needInput) break;
  }
  if (wantInputGradient) return { dInput: dy, weights };
  if (dy !== dOutput) dy.dispose();
  return { dInput: null, weights };
}
