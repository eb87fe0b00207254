// Forward and backward of each front layer kind, side by side (as Darknet keeps them), on tensors that
// hold a region of the map with its padding already materialised: every conv and pool here is VALID.
import * as tf from '@tensorflow/tfjs';
import { type ConvLayer, type FrontLayer, type MaxpoolLayer, type Network, mapShapes } from '../model/layers.js';
import type { ConvParams, FrontParams } from '../model/weights.js';

const LEAKY_SLOPE = 0.1; // Darknet's leaky ReLU
const BN_EPSILON = 0.000001; // Darknet divides by sqrt(variance) + .000001f

export interface ConvTensors {
  readonly filter: tf.Tensor4D;
  readonly biases: tf.Tensor1D;
  /** Frozen batch norm: mean and the per-channel divisor sqrt(variance) + eps are constants. */
  readonly bn?: { readonly scales: tf.Tensor1D; readonly mean: tf.Tensor1D; readonly divisor: tf.Tensor1D };
}

export type LayerTensors = ConvTensors | null;

export function convTensors(params: ConvParams, layer: ConvLayer, inChannels: number): ConvTensors {
  const filter = tf.tensor4d(params.filter, [layer.size, layer.size, inChannels, layer.filters]);
  const biases = tf.tensor1d(params.biases);
  if (!params.bn) return { filter, biases };
  const divisor = tf.tensor1d(params.bn.variance.map((v) => Math.fround(Math.sqrt(v) + BN_EPSILON)));
  return { filter, biases, bn: { scales: tf.tensor1d(params.bn.scales), mean: tf.tensor1d(params.bn.mean), divisor } };
}

/** Tensors of every front layer's parameters (null for maxpool layers). */
export function frontTensors(net: Network, params: FrontParams): LayerTensors[] {
  const maps = mapShapes(net);
  return net.layers.map((layer, l) => {
    const p = params[l];
    if (layer.kind !== 'conv') return null;
    if (!p) throw new Error(`layer ${l} is convolutional but has no parameters`);
    return convTensors(p, layer, maps[l]!.channels);
  });
}

export function disposeLayerTensors(all: readonly LayerTensors[]): void {
  for (const t of all) if (t) tf.dispose([t.filter, t.biases, ...(t.bn ? [t.bn.scales, t.bn.mean, t.bn.divisor] : [])]);
}

/** Padding value for positions outside the map: zero for conv, -inf for maxpool (Darknet skips them). */
export function paddingValue(layer: FrontLayer): number {
  return layer.kind === 'conv' ? 0 : -Infinity;
}

export interface ConvForward {
  readonly output: tf.Tensor4D;
  /** Conv output before batch norm; kept only for BN layers (the scale gradient needs it). */
  readonly preNorm?: tf.Tensor4D;
}

/** Disposes `t` unless it is one of `keep` (ops may return their input unchanged). */
function release(t: tf.Tensor, ...keep: tf.Tensor[]): void {
  if (!keep.includes(t)) t.dispose();
}

// Intermediates are disposed as soon as the next op has consumed them, not at the end of a tidy:
// the wasm heap never shrinks, so its high-water mark is what a layer costs. (Under tf.grad the
// engine keeps its own references to what backward needs, so early disposal is safe there too.)
export function convForward(layer: ConvLayer, t: ConvTensors, paddedInput: tf.Tensor4D, keepPreNorm: boolean): ConvForward {
  const conv = tf.conv2d(paddedInput, t.filter, layer.stride, 'valid');
  let affine: tf.Tensor4D;
  if (t.bn) {
    const centred = tf.sub(conv, t.bn.mean);
    const normalized = tf.div(centred, t.bn.divisor);
    centred.dispose();
    const scaled = tf.mul(normalized, t.bn.scales);
    normalized.dispose();
    affine = tf.add(scaled, t.biases);
    scaled.dispose();
  } else affine = tf.add(conv, t.biases);
  const keepConv = keepPreNorm && t.bn !== undefined;
  if (!keepConv) conv.dispose();
  const output = activate(layer, affine);
  release(affine, output);
  return keepConv ? { output, preNorm: conv } : { output };
}

function activate(layer: ConvLayer, x: tf.Tensor4D): tf.Tensor4D {
  if (layer.activation === 'leaky') return tf.leakyRelu(x, LEAKY_SLOPE);
  if (layer.activation === 'relu') return tf.relu(x);
  return x;
}

/** d(activation)/d(input) applied to dy, read from the output: y > 0 exactly where the input was. */
function activationBackward(layer: ConvLayer, output: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  if (layer.activation === 'linear') return dy;
  const positive = tf.greater(output, 0);
  const otherwise = layer.activation === 'leaky' ? tf.mul(dy, LEAKY_SLOPE) : tf.zerosLike(dy);
  const result = tf.where(positive, dy, otherwise) as tf.Tensor4D;
  positive.dispose();
  otherwise.dispose();
  return result;
}

export interface ConvGradients {
  readonly dInput: tf.Tensor4D | null;
  readonly dFilter: tf.Tensor4D;
  readonly dBiases: tf.Tensor1D;
  readonly dScales?: tf.Tensor1D;
}

/**
 * Backward of one conv layer for the gradient dy of the outputs it is given (a tile's partial
 * gradient). Returns the gradient over the whole padded input and the weight gradients.
 */
export function convBackward(
  layer: ConvLayer,
  t: ConvTensors,
  paddedInput: tf.Tensor4D,
  forward: ConvForward,
  dy: tf.Tensor4D,
  computeInputGradient: boolean,
): ConvGradients {
  const dAffine = activationBackward(layer, forward.output, dy);
  const dBiases = tf.sum(dAffine, [0, 1, 2]) as tf.Tensor1D;
  let dConv = dAffine;
  let dScales: tf.Tensor1D | undefined;
  if (t.bn) {
    if (!forward.preNorm) throw new Error('batch-norm backward needs the stashed pre-norm output');
    // dScales = sum(dAffine * (preNorm - mean) / divisor) per channel, formed without materialising
    // the normalized map: (sum(dAffine * preNorm) - mean * sum(dAffine)) / divisor.
    const product = tf.mul(dAffine, forward.preNorm);
    const weighted = tf.sum(product, [0, 1, 2]);
    product.dispose();
    dScales = tf.tidy(() => tf.div(tf.sub(weighted, tf.mul(t.bn!.mean, dBiases)), t.bn!.divisor)) as tf.Tensor1D;
    weighted.dispose();
    // dConv = dAffine * scales / divisor with the per-channel factor formed first: one full-size op.
    const factor = tf.div(t.bn.scales, t.bn.divisor);
    dConv = tf.mul(dAffine, factor);
    factor.dispose();
    release(dAffine, dy);
  }
  const strides: [number, number] = [layer.stride, layer.stride];
  const dFilter = tf.engine().runKernel('Conv2DBackpropFilter', { x: paddedInput, dy: dConv }, {
    strides, pad: 'valid', dataFormat: 'NHWC', filterShape: t.filter.shape,
  }) as tf.Tensor4D;
  const dInput = computeInputGradient
    ? (tf.engine().runKernel('Conv2DBackpropInput', { dy: dConv, filter: t.filter }, {
        strides, pad: 'valid', dataFormat: 'NHWC', inputShape: paddedInput.shape,
      }) as tf.Tensor4D)
    : null;
  release(dConv, dy);
  return dScales ? { dInput, dFilter, dBiases, dScales } : { dInput, dFilter, dBiases };
}

export function maxpoolForward(layer: MaxpoolLayer, paddedInput: tf.Tensor4D): tf.Tensor4D {
  return tf.maxPool(paddedInput, layer.size, layer.stride, 'valid');
}

export function maxpoolBackward(layer: MaxpoolLayer, paddedInput: tf.Tensor4D, output: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  return tf.engine().runKernel('MaxPoolGrad', { dy, input: paddedInput, output }, {
    filterSize: layer.size, strides: layer.stride, pad: 'valid',
  }) as tf.Tensor4D;
}
