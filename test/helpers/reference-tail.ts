// The tail written out again with plain tf ops, independently of src/train/tail.ts (no layer-ops, no
// 1x1-conv form of connected layers), and whole-network gradients of front + tail by tf.grad. A
// [region] enters as Darknet's delta from the loop implementation in darknet-region.ts.
import * as tf from '@tensorflow/tfjs';
import { type FrontLoss, type ReferenceGradients, referenceGradients } from '../../src/fused/reference.js';
import { type MapShape, type Network, mapShapes } from '../../src/model/layers.js';
import { type TailLayer, tailShapes } from '../../src/model/tail-layers.js';
import type { FrontParams, TailParams } from '../../src/model/weights.js';
import type { WeightGradient } from '../../src/train/optimizer.js';
import type { TailTruth } from '../../src/train/tail.js';
import { darknetRegion } from './darknet-region.js';

interface LayerArgs {
  filter: tf.Tensor;
  biases: tf.Tensor;
  scales?: tf.Tensor;
}

function activation(kind: string, x: tf.Tensor): tf.Tensor {
  if (kind === 'leaky') return tf.maximum(x, tf.mul(x, 0.1));
  if (kind === 'relu') return tf.maximum(x, 0);
  return x;
}

/**
 * A scalar with the value of Darknet's region loss whose gradient w.r.t. z is minus Darknet's delta:
 * sum(z * -delta) plus the constant that makes up the value.
 */
function regionByDeltas(z: tf.Tensor4D, layer: Extract<TailLayer, { kind: 'region' }>, truth: TailTruth, seenAfterBatch?: number): tf.Scalar {
  if (truth instanceof Int32Array) throw new Error('a region needs boxes');
  const [batch, h, w] = z.shape;
  const values = z.dataSync() as Float32Array;
  const { delta, loss } = darknetRegion(values, batch, h, w, layer, truth, seenAfterBatch);
  const slope = delta.map((d) => -d);
  const dot = values.reduce((s, v, i) => s + v * slope[i]!, 0);
  return tf.add(tf.sum(tf.mul(z, tf.tensor(slope, z.shape))), loss - dot) as tf.Scalar;
}

/** The tail's loss on x (softmax: -sum_b log softmax(z_b)[label_b]), with every parameter an argument. */
export function independentTailLoss(
  input: MapShape, layers: readonly TailLayer[], params: TailParams, args: readonly (LayerArgs | null)[], x: tf.Tensor4D, truth: TailTruth, seenAfterBatch?: number,
): tf.Scalar {
  const maps = tailShapes(input, layers);
  const batch = x.shape[0];
  let h: tf.Tensor4D = x;
  layers.forEach((layer, l) => {
    const a = args[l];
    if (layer.kind === 'conv') {
      const after = layer.padTotal - layer.padBefore;
      const padded = tf.pad(h, [[0, 0], [layer.padBefore, after], [layer.padBefore, after], [0, 0]]);
      let y: tf.Tensor = tf.conv2d(padded, a!.filter as tf.Tensor4D, layer.stride, 'valid');
      const bn = params[l]!.bn;
      if (bn) y = tf.mul(tf.div(tf.sub(y, tf.tensor1d(bn.mean)), tf.add(tf.sqrt(tf.tensor1d(bn.variance)), 1e-6)), a!.scales!);
      h = activation(layer.activation, tf.add(y, a!.biases)) as tf.Tensor4D;
    } else if (layer.kind === 'maxpool') {
      const after = layer.padTotal - layer.padBefore;
      h = tf.maxPool(tf.pad(h, [[0, 0], [layer.padBefore, after], [layer.padBefore, after], [0, 0]], -1e30), layer.size, layer.stride, 'valid');
    } else if (layer.kind === 'avgpool') {
      h = tf.reshape(tf.div(tf.sum(h, [1, 2]), maps[l]!.height * maps[l]!.width), [batch, 1, 1, -1]);
    } else if (layer.kind === 'connected') {
      const inputs = maps[l]!.height * maps[l]!.width * maps[l]!.channels;
      const y = tf.add(tf.matMul(tf.reshape(h, [batch, inputs]), tf.reshape(a!.filter, [inputs, layer.outputs])), a!.biases);
      h = tf.reshape(activation(layer.activation, y), [batch, 1, 1, layer.outputs]);
    }
  });
  const last = layers[layers.length - 1]!;
  if (last.kind === 'region') return regionByDeltas(h, last, truth, seenAfterBatch);
  if (!(truth instanceof Int32Array)) throw new Error('a softmax needs labels');
  const classes = maps[maps.length - 1]!.channels;
  const p = tf.softmax(tf.reshape(h, [batch, classes]));
  const oneHot = tf.oneHot(tf.tensor1d(truth, 'int32'), classes);
  return tf.neg(tf.sum(tf.mul(oneHot, tf.log(p)))) as tf.Scalar;
}

const tailArgs = (params: TailParams, layers: readonly TailLayer[], input: MapShape): (LayerArgs | null)[] => {
  const maps = tailShapes(input, layers);
  return params.map((p, l) => {
    if (!p) return null;
    const layer = layers[l]!;
    const shape = layer.kind === 'conv' ? [layer.size, layer.size, maps[l]!.channels, layer.filters] : [p.filter.length];
    return { filter: tf.tensor(p.filter, shape), biases: tf.tensor1d(p.biases), ...(p.bn ? { scales: tf.tensor1d(p.bn.scales) } : {}) };
  });
};

/** The loss of the front's output through the tail with constant tail parameters (for referenceGradients). */
export function tailAsFrontLoss(input: MapShape, layers: readonly TailLayer[], params: TailParams, truth: TailTruth, seenAfterBatch?: number): FrontLoss {
  return (output) => independentTailLoss(input, layers, params, tailArgs(params, layers, input), output, truth, seenAfterBatch);
}

export interface WholeNetworkGradients {
  readonly loss: number;
  readonly frontOutput: Float32Array;
  readonly outputGradient: Float32Array;
  /** Front weight and input gradients, and the front output. */
  readonly front: ReferenceGradients;
  readonly tail: (WeightGradient | null)[];
}

/** Gradients of loss(tail(front(images))) w.r.t. every front and tail parameter and the front output. */
export async function wholeNetworkGradients(
  net: Network, params: FrontParams, tail: readonly TailLayer[], tailParams: TailParams, images: Float32Array, truth: TailTruth, batch: number, seenAfterBatch?: number,
): Promise<WholeNetworkGradients> {
  const input = mapShapes(net)[net.layers.length]!;
  const front = await referenceGradients(net, params, images, tailAsFrontLoss(input, tail, tailParams, truth, seenAfterBatch), batch);
  const x = tf.tensor4d(front.output, [batch, input.height, input.width, input.channels]);
  const args = tailArgs(tailParams, tail, input);
  const flat: tf.Tensor[] = [x];
  args.forEach((a) => a && flat.push(a.filter, a.biases, ...(a.scales ? [a.scales] : [])));
  const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => {
    let at = 1;
    const rebuilt = args.map((a) => (a ? { filter: xs[at++]!, biases: xs[at++]!, ...(a.scales ? { scales: xs[at++]! } : {}) } : null));
    return independentTailLoss(input, tail, tailParams, rebuilt, xs[0] as tf.Tensor4D, truth, seenAfterBatch);
  })(flat);
  const data = await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array));
  const loss = (await value.data())[0]!;
  tf.dispose([value, ...grads, ...flat]);
  let at = 1;
  const tailGradients = args.map((a): WeightGradient | null => {
    if (!a) return null;
    const dFilter = data[at++]!;
    const dBiases = data[at++]!;
    return a.scales ? { dFilter, dBiases, dScales: data[at++]! } : { dFilter, dBiases };
  });
  return { loss, frontOutput: front.output, outputGradient: data[0]!, front, tail: tailGradients };
}

/** Largest difference relative to the reference's largest magnitude. */
export function relativeError(actual: Float32Array, expected: Float32Array): number {
  if (actual.length !== expected.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < actual.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

/** Worst relative error over every gradient of two per-layer lists. */
export function gradientsError(actual: readonly (WeightGradient | null)[], expected: readonly (WeightGradient | null)[]): number {
  let worst = 0;
  expected.forEach((e, l) => {
    const a = actual[l];
    if (!e) return;
    if (!a) {
      worst = Infinity;
      return;
    }
    worst = Math.max(worst, relativeError(a.dFilter, e.dFilter), relativeError(a.dBiases, e.dBiases));
    if (e.dScales) worst = Math.max(worst, a.dScales ? relativeError(a.dScales, e.dScales) : Infinity);
  });
  return worst;
}
