// Forward and backward of each front layer kind, side by side (as Darknet keeps them), on tensors that
// hold a region of the map with its padding already materialised: every conv and pool here is VALID.
import * as tf from '@tensorflow/tfjs-core';
import { type ConvLayer, type FrontLayer, type MaxpoolLayer, type Network, mapShapes } from '../model/layers.js';
import type { ConvParams, FrontParams } from '../model/weights.js';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { type AffineActivateGradients, type AffineConstants, affineActivateBackward, affineActivateForward } from './wasm-kernels/bn-activation.js';
import { accumulateFilterGradient, filterFromSums } from './wasm-kernels/conv2d-backprop-filter.js';
import { rotateFilter } from './wasm-kernels/conv2d-backprop-input.js';

const LEAKY_SLOPE = 0.1; // Darknet's leaky ReLU
const BN_EPSILON = 0.000001; // Darknet divides by sqrt(variance) + .000001f

/** A conv layer's bias and frozen batch norm: small, kept on the compute heap for the whole step. */
export interface ConvAffine {
  readonly biases: tf.Tensor1D;
  /** Frozen batch norm: mean and the per-channel divisor sqrt(variance) + eps are constants. */
  readonly bn?: { readonly scales: tf.Tensor1D; readonly mean: tf.Tensor1D; readonly divisor: tf.Tensor1D };
  /** The same per-channel values as arrays, for the fused wasm passes; absent under autodiff. */
  readonly constants?: AffineConstants;
}

export interface ConvTensors extends ConvAffine {
  readonly filter: tf.Tensor4D;
}

export type LayerTensors = ConvTensors | null;

export function convAffine(params: ConvParams): ConvAffine {
  const biases = tf.tensor1d(params.biases);
  if (!params.bn) return { biases, constants: { biases: params.biases.slice() } };
  const divisor = params.bn.variance.map((v) => Math.fround(Math.sqrt(v) + BN_EPSILON));
  const bn = { scales: params.bn.scales.slice(), mean: params.bn.mean.slice(), divisor };
  return {
    biases,
    bn: { scales: tf.tensor1d(bn.scales), mean: tf.tensor1d(bn.mean), divisor: tf.tensor1d(divisor) },
    constants: { biases: params.biases.slice(), bn },
  };
}

export const filterTensor = (params: ConvParams, layer: ConvLayer, inChannels: number): tf.Tensor4D =>
  tf.tensor4d(params.filter, [layer.size, layer.size, inChannels, layer.filters]);

export function convTensors(params: ConvParams, layer: ConvLayer, inChannels: number): ConvTensors {
  return { filter: filterTensor(params, layer, inChannels), ...convAffine(params) };
}

function convParamsOf(params: FrontParams, l: number): ConvParams {
  const p = params[l];
  if (!p) throw new Error(`layer ${l} is convolutional but has no parameters`);
  return p;
}

/** Tensors of every front layer's parameters (null for maxpool layers). */
export function frontTensors(net: Network, params: FrontParams): LayerTensors[] {
  const maps = mapShapes(net);
  return net.layers.map((layer, l) => (layer.kind === 'conv' ? convTensors(convParamsOf(params, l), layer, maps[l]!.channels) : null));
}

/** What tile compute reads of the parameters: resident biases and batch norm, and the filters of the run in hand. */
export interface ComputeParams {
  readonly affine: readonly (ConvAffine | null)[];
  /**
   * Layer l's filter, owned here (callers do not dispose it): made from the parameter arrays at its
   * first use and kept for the tasks that follow, so that the tiles of a run share one tensor and
   * XNNPACK's packed copy of it (made at a tensor's first convolution, kept while it lives).
   */
  filter(layer: number): tf.Tensor4D;
  /** What layer l's input gradient convolves with (inputGradientFilter), owned and kept like filter(). */
  gradientFilter(layer: number): tf.Tensor4D;
  /**
   * Disposes the kept filters of layers outside first..last (a task's run): the heap holds the
   * filters of one run, not every layer's (memory/estimate.ts counts them).
   */
  keepOnly(first: number, last: number): void;
  /** The task is done with layer l: unless filters are kept across tasks, its filters are disposed now. */
  release(layer: number): void;
  /** Every tensor: at a parameter update, and at the end. */
  dispose(): void;
}

/**
 * `keepAcrossTasks`: keep a layer's filters for the tasks that follow (worth it when this thread
 * computes several tiles of a run: keepsFiltersAcrossTasks); else each task makes them once and
 * drops them when done with the layer, and the heap holds one layer's filters at a time.
 */
export function computeParams(net: Network, params: FrontParams, keepAcrossTasks = true): ComputeParams {
  const maps = mapShapes(net);
  const conv = (l: number): ConvLayer => {
    const layer = net.layers[l]!;
    if (layer.kind !== 'conv') throw new Error(`layer ${l} is a ${layer.kind} layer and has no filter`);
    return layer;
  };
  const affine = net.layers.map((layer, l) => (layer.kind === 'conv' ? convAffine(convParamsOf(params, l)) : null));
  const filters = new Map<number, tf.Tensor4D>();
  const gradientFilters = new Map<number, tf.Tensor4D>();
  const made = (l: number): tf.Tensor4D => {
    const layer = conv(l); // first: a maxpool layer has no filter, not missing parameters
    return filterTensor(convParamsOf(params, l), layer, maps[l]!.channels);
  };
  const kept = (cache: Map<number, tf.Tensor4D>, l: number, make: () => tf.Tensor4D): tf.Tensor4D => {
    let t = cache.get(l);
    if (!t) cache.set(l, (t = make()));
    return t;
  };
  const filter = (l: number): tf.Tensor4D => kept(filters, l, () => made(l));
  const dropWhere = (drop: (layer: number) => boolean): void => {
    for (const cache of [filters, gradientFilters]) {
      for (const [l, t] of cache) {
        if (!drop(l)) continue;
        t.dispose();
        cache.delete(l);
      }
    }
  };
  return {
    affine,
    filter,
    gradientFilter: (l) => {
      const layer = conv(l);
      if (layer.stride !== 1) return filter(l);
      // Rotated from the kept filter when there is one; a filter made only to be rotated is not kept.
      return kept(gradientFilters, l, () => {
        const source = filters.get(l);
        if (source) return inputGradientFilter(layer, source);
        const temporary = made(l);
        const rotated = inputGradientFilter(layer, temporary);
        temporary.dispose();
        return rotated;
      });
    },
    keepOnly: (first, last) => dropWhere((l) => l < first || l > last),
    release: (layer) => {
      if (!keepAcrossTasks) dropWhere((l) => l === layer);
    },
    dispose: () => {
      dropWhere(() => true);
      disposeLayerTensors(affine);
    },
  };
}

export function disposeLayerTensors(all: readonly (ConvAffine | ConvTensors | null)[]): void {
  for (const t of all) {
    if (t) tf.dispose([t.biases, ...('filter' in t ? [t.filter] : []), ...(t.bn ? [t.bn.scales, t.bn.mean, t.bn.divisor] : [])]);
  }
}

/** Padding value for positions outside the map: zero for conv, -inf for maxpool (Darknet skips them). */
export function paddingValue(layer: FrontLayer): number {
  return layer.kind === 'conv' ? 0 : -Infinity;
}

/** What a conv layer keeps for backward: its pre-norm output with BN (the scale gradient needs it), else its output. */
export const stashesPreNorm = (layer: FrontLayer): boolean => layer.kind === 'conv' && layer.batchNormalize;

/** Disposes `t` unless it is one of `keep` (ops may return their input unchanged). */
function release(t: tf.Tensor, ...keep: tf.Tensor[]): void {
  if (!keep.includes(t)) t.dispose();
}

// Intermediates are disposed as soon as the next op has consumed them, not at the end of a tidy:
// the wasm heap never shrinks, so its high-water mark is what a layer costs. (Under tf.grad the
// engine keeps its own references to what backward needs, so early disposal is safe there too.)
export function convolve(layer: ConvLayer, t: ConvTensors, paddedInput: tf.Tensor4D): tf.Tensor4D {
  return tf.conv2d(paddedInput, t.filter, layer.stride, 'valid');
}

/**
 * Batch norm (or bias) without the activation; `conv` is kept. Frozen batch norm is one per-channel
 * scale and shift, conv * a + b with a = scales / divisor and b = biases - mean * a (Darknet's
 * (x - mean) / divisor * scales + biases up to rounding): one multiply and one add per element, and
 * the fused wasm pass (wasm-kernels/bn-activation.ts) rounds the same ops in the same order.
 */
function affine(t: ConvAffine, conv: tf.Tensor4D): tf.Tensor4D {
  if (!t.bn) return tf.add(conv, t.biases);
  const a = tf.div(t.bn.scales, t.bn.divisor);
  const shift = tf.mul(t.bn.mean, a);
  const b = tf.sub(t.biases, shift);
  const scaled = tf.mul(conv, a);
  const result = tf.add(scaled, b);
  tf.dispose([a, shift, b, scaled]);
  return result as tf.Tensor4D;
}

/** Whether the one-pass wasm versions apply (they have no autodiff gradient: never under tf.grad). */
const fusable = (t: ConvAffine): t is ConvAffine & { constants: AffineConstants } => t.constants !== undefined && tf.getBackend() === 'wasm';

/** The layer's output from its convolution; `conv` is kept. Backward recomputes it the same way, bit for bit. */
export function normalizeActivate(layer: ConvLayer, t: ConvAffine, conv: tf.Tensor4D): tf.Tensor4D {
  if (fusable(t)) return affineActivateForward(layer, t.constants, LEAKY_SLOPE, conv);
  const z = affine(t, conv);
  const output = activate(layer, z);
  release(z, output);
  return output;
}

/** A conv layer's output (convolution, then batch norm or bias, then activation). */
export function convLayerOutput(layer: ConvLayer, t: ConvTensors, paddedInput: tf.Tensor4D): tf.Tensor4D {
  const conv = convolve(layer, t, paddedInput);
  const output = normalizeActivate(layer, t, conv);
  release(conv, output);
  return output;
}

function activate(layer: ConvLayer, x: tf.Tensor4D): tf.Tensor4D {
  if (layer.activation === 'leaky') return tf.leakyRelu(x, LEAKY_SLOPE);
  if (layer.activation === 'relu') return tf.relu(x);
  return x;
}

/** d(activation)/d(input) applied to dy, given the activation's input or output (same sign). */
function activationBackward(layer: ConvLayer, signOf: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  if (layer.activation === 'linear') return dy;
  const positive = tf.greater(signOf, 0);
  const otherwise = layer.activation === 'leaky' ? tf.mul(dy, LEAKY_SLOPE) : tf.zerosLike(dy);
  const result = tf.where(positive, dy, otherwise) as tf.Tensor4D;
  positive.dispose();
  otherwise.dispose();
  return result;
}

/** The gradient at the convolution's output and the per-channel sums of the bias and scale gradients. */
export type ConvOutputGradients = AffineActivateGradients;

/** A per-channel sum tensor as float64 values; the tensor is disposed. */
function sums(t: tf.Tensor): Float64Array {
  const values = Float64Array.from(t.dataSync());
  t.dispose();
  return values;
}

/**
 * Back through activation and batch norm (or bias) of one conv layer, from the gradient dy of the
 * outputs the tile owns. `stashed` is what the layer kept (see stashesPreNorm). dy is kept.
 */
export function convOutputBackward(layer: ConvLayer, t: ConvAffine, stashed: tf.Tensor4D, dy: tf.Tensor4D): ConvOutputGradients {
  if (fusable(t)) return affineActivateBackward(layer, t.constants, LEAKY_SLOPE, stashed, dy);
  if (!t.bn) {
    const dConv = activationBackward(layer, stashed, dy);
    return { dConv, biasSums: sums(tf.sum(dConv, [0, 1, 2])) };
  }
  const z = affine(t, stashed);
  const dAffine = activationBackward(layer, z, dy);
  z.dispose();
  const biasSums = sums(tf.sum(dAffine, [0, 1, 2]));
  const product = tf.mul(dAffine, stashed);
  const productSums = sums(tf.sum(product, [0, 1, 2]));
  product.dispose();
  // dConv = dAffine * scales / divisor with the per-channel factor formed first: one full-size op.
  const factor = tf.div(t.bn.scales, t.bn.divisor);
  const dConv = tf.mul(dAffine, factor);
  factor.dispose();
  release(dAffine, dy);
  return { dConv: dConv as tf.Tensor4D, biasSums, productSums };
}

/**
 * dScales = sum(dAffine * (preNorm - mean) / divisor) per channel, formed without materialising the
 * normalized map: (sum(dAffine * preNorm) - mean * sum(dAffine)) / divisor.
 */
export function scaleGradient(t: ConvAffine, biasSums: Float64Array, productSums: Float64Array): Float64Array {
  const bn = t.constants?.bn;
  if (!bn) throw new Error('the scale gradient needs the batch-norm constants');
  return productSums.map((p, c) => (p - bn.mean[c]! * biasSums[c]!) / bn.divisor[c]!);
}

export interface FilterGradientSum {
  /** Adds the filter gradient of one band, from its padded input and its conv-output gradient (both kept). */
  add(paddedInput: tf.Tensor4D, dConv: tf.Tensor4D): void;
  /** The sum as float32, laid out as the filter [k, k, in, out], into the start of `target`. */
  writeTo(target: Float32Array): void;
}

/**
 * One conv layer's filter gradient summed over its bands in float64 (a cancelling sum must not
 * collect one float32 rounding per band). On wasm the kernel adds into the sums directly.
 */
/**
 * `scratch`, when given, holds the float64 sums (at least the filter's size; zeroed here): a layer
 * with 1.2 M filter values would otherwise allocate 9.4 MiB on every backward.
 */
export function filterGradientSum(layer: ConvLayer, inChannels: number, scratch?: Float64Array): FilterGradientSum {
  const filterShape: [number, number, number, number] = [layer.size, layer.size, inChannels, layer.filters];
  const attrs = { strides: [layer.stride, layer.stride] as [number, number], pad: 'valid' as const, dataFormat: 'NHWC' as const, filterShape };
  const floats = layer.size * layer.size * inChannels * layer.filters;
  if (scratch && scratch.length < floats) throw new Error(`filter-gradient scratch holds ${scratch.length} sums, the filter has ${floats}`);
  const sums = scratch ? scratch.subarray(0, floats).fill(0) : new Float64Array(floats);
  if (tf.getBackend() === 'wasm') {
    return {
      add: (x, dConv) => accumulateFilterGradient(tf.backend() as BackendWasm, x, dConv, attrs, sums),
      writeTo: (target) => filterFromSums(sums, layer.filters, target),
    };
  }
  return {
    add: (x, dConv) => {
      const dFilter = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: dConv }, { ...attrs }) as tf.Tensor4D;
      const values = dFilter.dataSync();
      for (let i = 0; i < sums.length; i++) sums[i] = sums[i]! + values[i]!;
      dFilter.dispose();
    },
    writeTo: (target) => target.set(sums),
  };
}

/**
 * What a conv layer's input gradient convolves dConv with: at stride 1 the filter rotated 180 degrees
 * with its channel axes swapped, a new tensor (the input gradient is then a forward conv padded by
 * size - 1, what the wasm Conv2DBackpropInput kernel does per call); at other strides the filter
 * itself (Conv2DBackpropInput takes it as is).
 */
export function inputGradientFilter(layer: ConvLayer, filter: tf.Tensor4D): tf.Tensor4D {
  if (layer.stride !== 1) return filter;
  // One pass over the filter on wasm (its generic transpose and reverse kernels are several times slower).
  return tf.getBackend() === 'wasm'
    ? tf.engine().makeTensorFromTensorInfo(rotateFilter(tf.backend() as BackendWasm, filter)) as tf.Tensor4D
    : tf.tidy(() => tf.reverse(tf.transpose(filter, [0, 1, 3, 2]), [0, 1])) as tf.Tensor4D;
}

/** The gradient over the whole padded input of a band whose conv-output gradient is `dConv` (both kept). */
export function convInputGradient(layer: ConvLayer, gradientFilter: tf.Tensor4D, dConv: tf.Tensor4D, paddedShape: readonly number[]): tf.Tensor4D {
  if (layer.stride !== 1) {
    return tf.engine().runKernel('Conv2DBackpropInput', { dy: dConv, filter: gradientFilter }, {
      strides: [layer.stride, layer.stride], pad: 'valid', dataFormat: 'NHWC', inputShape: paddedShape,
    }) as tf.Tensor4D;
  }
  const k = layer.size - 1;
  return tf.conv2d(dConv, gradientFilter, 1, [[0, 0], [k, k], [k, k], [0, 0]]);
}

export function maxpoolForward(layer: MaxpoolLayer, paddedInput: tf.Tensor4D): tf.Tensor4D {
  return tf.maxPool(paddedInput, layer.size, layer.stride, 'valid');
}

export function maxpoolBackward(layer: MaxpoolLayer, paddedInput: tf.Tensor4D, output: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  return tf.engine().runKernel('MaxPoolGrad', { dy, input: paddedInput, output }, {
    filterSize: layer.size, strides: layer.stride, pad: 'valid',
  }) as tf.Tensor4D;
}
