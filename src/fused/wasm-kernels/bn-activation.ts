// Frozen batch norm (or bias) plus activation as single passes over the wasm heap, forward and
// backward. As separate tfjs ops each step materialises a full-size temporary (centred, normalized,
// scaled, the sign mask, the leaky branch), and at 608x608x32 those temporaries set the heap's
// high-water mark. Batch norm is the per-channel affine z = x * a + b with a = scales / divisor and
// b = biases - mean * a (layer-ops.ts forms it with the same ops under autodiff), every float op
// rounded to float32 in that order (Math.fround), so the values equal those of the separate ops bit
// for bit: the tiles take every activation branch the tf.grad reference takes.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { ConvLayer } from '../../model/layers.js';
import { allocate, heapFloats, heapOffset, release } from './heap.js';
import { type AffineKernels, affineKernels } from './simd/affine-kernels.js';

export interface AffineConstants {
  readonly biases: Float32Array;
  /** Present with batch norm. */
  readonly bn?: { readonly mean: Float32Array; readonly divisor: Float32Array; readonly scales: Float32Array };
}

function wasmBackend(): BackendWasm {
  return tf.backend() as BackendWasm;
}

const f32 = Math.fround;

let simdAllowed = true;
/** Tests compare the SIMD kernels with the JS loops: off, every pass runs the loops. */
export function allowSimdAffine(allowed: boolean): void {
  simdAllowed = allowed;
}

/** The SIMD kernels when they apply (their lanes are four channels), else null: the JS loops run. */
function simdKernels(backend: BackendWasm, channels: number): AffineKernels | null {
  return simdAllowed && channels % 4 === 0 ? affineKernels(backend) : null;
}

/** a, then b, copied into a fresh heap buffer the kernels read; release it after the call. */
function heapConstants(backend: BackendWasm, a: Float32Array, b: Float32Array) {
  const buffer = allocate(backend, [a.length + b.length]);
  const at = heapOffset(backend, buffer);
  const heap = heapFloats(backend);
  heap.set(a, at);
  heap.set(b, at + a.length);
  return { buffer, aByte: at * 4, bByte: (at + a.length) * 4 };
}

/** Per channel, z = f32(f32(x * a) + b): the frozen batch norm folded into one scale and shift (a = 1 without it). */
function affinePerChannel(k: AffineConstants, channels: number): { a: Float32Array; b: Float32Array } {
  const a = new Float32Array(channels).fill(1);
  const b = Float32Array.from(k.biases);
  if (k.bn) {
    for (let c = 0; c < channels; c++) {
      a[c] = k.bn.scales[c]! / k.bn.divisor[c]!;
      b[c] = k.biases[c]! - f32(k.bn.mean[c]! * a[c]!);
    }
  }
  return { a, b };
}

/** What the activation multiplies a negative input by (linear: 1, unchanged; relu: 0). */
function negativeSlope(layer: ConvLayer, slope: number): number {
  return layer.activation === 'leaky' ? f32(slope) : layer.activation === 'relu' ? 0 : 1;
}

/** out = act(bn(x)) (or act(x + b)) into a new tensor; `x` is kept. */
export function affineActivateForward(layer: ConvLayer, k: AffineConstants, slope: number, x: tf.Tensor4D): tf.Tensor4D {
  const backend = wasmBackend();
  const out = allocate(backend, x.shape);
  const channels = x.shape[3];
  const { a, b } = affinePerChannel(k, channels);
  const negative = negativeSlope(layer, slope);
  const simd = simdKernels(backend, channels);
  if (simd) {
    const constants = heapConstants(backend, a, b);
    simd.affineForward(heapOffset(backend, x) * 4, heapOffset(backend, out) * 4, x.size / channels, channels, constants.aByte, constants.bByte, negative);
    release(backend, constants.buffer);
    return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor4D;
  }
  const heap = heapFloats(backend);
  const xAt = heapOffset(backend, x);
  const outAt = heapOffset(backend, out);
  for (let i = 0, c = 0; i < x.size; i++, c = c + 1 === channels ? 0 : c + 1) {
    const z = f32(f32(heap[xAt + i]! * a[c]!) + b[c]!);
    heap[outAt + i] = z < 0 ? (negative === 0 ? 0 : f32(z * negative)) : z;
  }
  return tf.engine().makeTensorFromTensorInfo(out) as tf.Tensor4D;
}

export interface AffineActivateGradients {
  readonly dConv: tf.Tensor4D;
  /** Per channel, sum(dAffine): the bias gradient. */
  readonly biasSums: Float64Array;
  /** With BN, per channel, sum(dAffine * x): dScales = (productSums - mean * biasSums) / divisor. */
  readonly productSums?: Float64Array;
}

/**
 * From what the layer stashed and the gradient dy of its output: the gradient at the conv output and
 * the per-channel sums the bias and BN-scale gradients are formed from (in float64, so that sums over
 * bands of a map add up without float32 roundings between them). With BN the stash `x` is the conv
 * output (pre-norm); without, it is the layer's output, whose sign is that of the activation's
 * input. `x`, `dy` are kept.
 */
export function affineActivateBackward(layer: ConvLayer, k: AffineConstants, slope: number, x: tf.Tensor4D, dy: tf.Tensor4D): AffineActivateGradients {
  const backend = wasmBackend();
  const dConv = allocate(backend, x.shape);
  const channels = x.shape[3];
  const { bn } = k;
  const { a, b } = affinePerChannel(k, channels);
  const negative = negativeSlope(layer, slope);
  const simd = simdKernels(backend, channels);
  if (simd) {
    const constants = heapConstants(backend, a, b);
    // Bias sums then product sums, f64, on an 8-byte boundary: one float of slack.
    const sumsBuffer = allocate(backend, [4 * channels + 1]);
    const sumsAt = heapOffset(backend, sumsBuffer);
    const sumsByte = Math.ceil(sumsAt / 2) * 8;
    heapFloats(backend).fill(0, sumsByte / 4, sumsByte / 4 + 4 * channels);
    simd.affineBackward(heapOffset(backend, x) * 4, heapOffset(backend, dy) * 4, heapOffset(backend, dConv) * 4, x.size / channels, channels,
      constants.aByte, constants.bByte, negative, bn ? 1 : 0, sumsByte);
    const sums = new Float64Array(heapFloats(backend).buffer, sumsByte, 2 * channels);
    const biasSums = sums.slice(0, channels);
    const productSums = sums.slice(channels);
    release(backend, constants.buffer, sumsBuffer);
    const dConvTensor = tf.engine().makeTensorFromTensorInfo(dConv) as tf.Tensor4D;
    return bn ? { dConv: dConvTensor, biasSums, productSums } : { dConv: dConvTensor, biasSums };
  }
  const heap = heapFloats(backend);
  const xAt = heapOffset(backend, x);
  const dyAt = heapOffset(backend, dy);
  const dAt = heapOffset(backend, dConv);
  const biasSums = new Float64Array(channels);
  const productSums = new Float64Array(channels);
  for (let i = 0, c = 0; i < x.size; i++, c = c + 1 === channels ? 0 : c + 1) {
    const xv = heap[xAt + i]!;
    let d = heap[dyAt + i]!;
    // The sign of the activation's input decides the branch, exactly as in forward (without batch
    // norm the stash is the output, whose sign is the input's).
    const z = bn ? f32(f32(xv * a[c]!) + b[c]!) : xv;
    if (!(z > 0)) d = negative === 0 ? 0 : f32(d * negative);
    biasSums[c] = biasSums[c]! + d;
    if (bn) {
      productSums[c] = productSums[c]! + d * xv;
      // dConv = dAffine * a: the gradient of x * a.
      heap[dAt + i] = f32(d * a[c]!);
    } else heap[dAt + i] = d;
  }
  const dConvTensor = tf.engine().makeTensorFromTensorInfo(dConv) as tf.Tensor4D;
  return bn ? { dConv: dConvTensor, biasSums, productSums } : { dConv: dConvTensor, biasSums };
}
