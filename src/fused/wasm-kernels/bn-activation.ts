// Frozen batch norm (or bias) plus activation as single passes over the wasm heap, forward and
// backward. As separate tfjs ops each step materialises a full-size temporary (centred, normalized,
// scaled, the sign mask, the leaky branch), and at 608x608x32 those temporaries set the heap's
// high-water mark. Every float op is rounded to float32 in the tfjs op order (Math.fround after each
// +, -, *, /), so the values equal those of the separate ops bit for bit.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { ConvLayer } from '../../model/layers.js';
import { allocate, heapFloats, heapOffset } from './heap.js';

const f32 = Math.fround;

export interface AffineConstants {
  readonly biases: Float32Array;
  /** Present with batch norm. */
  readonly bn?: { readonly mean: Float32Array; readonly divisor: Float32Array; readonly scales: Float32Array };
}

function wasmBackend(): BackendWasm {
  return tf.backend() as BackendWasm;
}

/** out = act(bn(x)) (or act(x + b)) into a new tensor; `x` is kept. */
export function affineActivateForward(layer: ConvLayer, k: AffineConstants, slope: number, x: tf.Tensor4D): tf.Tensor4D {
  const backend = wasmBackend();
  const out = allocate(backend, x.shape);
  const heap = heapFloats(backend);
  const xAt = heapOffset(backend, x);
  const outAt = heapOffset(backend, out);
  const channels = x.shape[3];
  const alpha = f32(slope);
  const { biases, bn } = k;
  for (let i = 0, c = 0; i < x.size; i++, c = c + 1 === channels ? 0 : c + 1) {
    let z = heap[xAt + i]!;
    z = bn ? f32(f32(f32(f32(z - bn.mean[c]!) / bn.divisor[c]!) * bn.scales[c]!) + biases[c]!) : f32(z + biases[c]!);
    if (layer.activation === 'leaky') z = z < 0 ? f32(z * alpha) : z;
    else if (layer.activation === 'relu') z = z < 0 ? 0 : z;
    heap[outAt + i] = z;
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
  const heap = heapFloats(backend);
  const xAt = heapOffset(backend, x);
  const dyAt = heapOffset(backend, dy);
  const dAt = heapOffset(backend, dConv);
  const channels = x.shape[3];
  const alpha = f32(slope);
  const { biases, bn } = k;
  const biasSums = new Float64Array(channels);
  const productSums = new Float64Array(channels);
  const factor = bn ? bn.scales.map((s, c) => f32(s / bn.divisor[c]!)) : null;
  for (let i = 0, c = 0; i < x.size; i++, c = c + 1 === channels ? 0 : c + 1) {
    const xv = heap[xAt + i]!;
    let d = heap[dyAt + i]!;
    if (layer.activation !== 'linear') {
      // The sign of the activation's input decides the branch, exactly as in forward.
      const z = bn ? f32(f32(f32(f32(xv - bn.mean[c]!) / bn.divisor[c]!) * bn.scales[c]!) + biases[c]!) : xv;
      if (!(z > 0)) d = layer.activation === 'leaky' ? f32(d * alpha) : 0;
    }
    biasSums[c] = biasSums[c]! + d;
    if (factor) {
      productSums[c] = productSums[c]! + d * xv;
      heap[dAt + i] = f32(d * factor[c]!);
    } else heap[dAt + i] = d;
  }
  const dConvTensor = tf.engine().makeTensorFromTensorInfo(dConv) as tf.Tensor4D;
  return bn ? { dConv: dConvTensor, biasSums, productSums } : { dConv: dConvTensor, biasSums };
}
