// The tail on the head device: from the whole front output through the tail layers to softmax's
// cross-entropy, and by TensorFlow.js autodiff the gradient of that loss w.r.t. the front output and
// every tail parameter. Layer math is the front's (layer-ops), run on whole maps with the padding
// materialised as the front does; a connected layer is a 1x1 conv over its flattened input.
import * as tf from '@tensorflow/tfjs';
import { type ConvTensors, convLayerOutput, convTensors, disposeLayerTensors, maxpoolForward, paddingValue } from '../fused/layer-ops.js';
import type { ConvLayer, MapShape, MaxpoolLayer } from '../model/layers.js';
import { type TailLayer, tailClasses } from '../model/tail-layers.js';
import { type ParamLayout, type TailParams, tailLayouts } from '../model/weights.js';
import type { WeightGradient } from './optimizer.js';

export interface TailResult {
  /** Cross-entropy summed over the batch, as Darknet's softmax cost: -sum over images of log p[label]. */
  readonly loss: number;
  /** dLoss/dOutput over the whole front output, [batch, H, W, C]. */
  readonly outputGradient: Float32Array;
  /** Per tail layer; null for layers without parameters. */
  readonly gradients: (WeightGradient | null)[];
}

/** Zeros (conv) or -inf (maxpool, whose windows skip positions outside the map) around the map. */
function padMap(x: tf.Tensor4D, layer: ConvLayer | MaxpoolLayer): tf.Tensor4D {
  const before = layer.padBefore;
  const after = layer.padTotal - layer.padBefore;
  if (before === 0 && after === 0) return x;
  return tf.pad(x, [[0, 0], [before, after], [before, after], [0, 0]], paddingValue(layer));
}

/** The summed cross-entropy of the tail on `x` against one-hot `truth` [batch, classes]. */
function tailLoss(layers: readonly TailLayer[], layouts: readonly ParamLayout[], tensors: readonly (ConvTensors | null)[], x: tf.Tensor4D, truth: tf.Tensor2D): tf.Scalar {
  const batch = x.shape[0];
  let h = x;
  layers.forEach((layer, l) => {
    if (layer.kind === 'conv') h = convLayerOutput(layer, tensors[l]!, padMap(h, layer));
    else if (layer.kind === 'maxpool') h = maxpoolForward(layer, padMap(h, layer));
    else if (layer.kind === 'avgpool') h = tf.mean(h, [1, 2], true);
    else if (layer.kind === 'connected') h = convLayerOutput(layouts[l]!.conv, tensors[l]!, tf.reshape(h, [batch, 1, 1, -1]));
  });
  // [softmax] is the last layer (parseTail, tailShapes): log-softmax keeps the loss finite when a
  // probability underflows, and its gradient is Darknet's softmax delta p - truth.
  const logits = tf.reshape(h, [batch, -1]);
  return tf.neg(tf.sum(tf.mul(truth, tf.logSoftmax(logits)))) as tf.Scalar;
}

/**
 * One step of the tail. `output` is the front's whole output map [batch, H, W, C] (input: its shape),
 * `labels` one class index per image. Parameters are read, not changed.
 */
export async function runTail(
  input: MapShape, layers: readonly TailLayer[], params: TailParams, output: Float32Array, labels: Int32Array, batch: number,
): Promise<TailResult> {
  const classes = tailClasses(input, layers);
  if (labels.length !== batch) throw new Error(`the tail got ${labels.length} labels for a batch of ${batch}`);
  labels.forEach((label, i) => {
    if (!Number.isInteger(label) || label < 0 || label >= classes) throw new Error(`label ${label} of image ${i} is outside the softmax's ${classes} classes`);
  });
  const expected = batch * input.height * input.width * input.channels;
  if (output.length !== expected) throw new Error(`the tail got ${output.length} floats of front output, a ${batch}x${input.height}x${input.width}x${input.channels} map has ${expected}`);

  const layouts = tailLayouts(input, layers);
  const constants = layouts.map((layout, l) => {
    if (!layout) return null;
    const p = params[l];
    if (!p) throw new Error(`tail layer ${l} has weights but no parameters`);
    return convTensors(p, layout.conv, layout.inChannels);
  });
  const x = tf.tensor4d(output, [batch, input.height, input.width, input.channels]);
  const truth = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), classes).toFloat() as tf.Tensor2D);
  // Differentiated: the front output, then per layer with weights its filter, biases and BN scales.
  const args: tf.Tensor[] = [x];
  constants.forEach((c) => c && args.push(c.filter, c.biases, ...(c.bn ? [c.bn.scales] : [])));
  const loss = (...xs: tf.Tensor[]): tf.Scalar => {
    let at = 1;
    const tensors = constants.map((c): ConvTensors | null => {
      if (!c) return null;
      const filter = xs[at++] as tf.Tensor4D;
      const biases = xs[at++] as tf.Tensor1D;
      return c.bn ? { filter, biases, bn: { ...c.bn, scales: xs[at++] as tf.Tensor1D } } : { filter, biases };
    });
    return tailLoss(layers, layouts, tensors, xs[0] as tf.Tensor4D, truth);
  };
  const { value, grads } = tf.valueAndGrads(loss)(args);
  try {
    const data = await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array));
    const lossValue = (await value.data())[0]!;
    let at = 1;
    const gradients = constants.map((c): WeightGradient | null => {
      if (!c) return null;
      const dFilter = data[at++]!;
      const dBiases = data[at++]!;
      return c.bn ? { dFilter, dBiases, dScales: data[at++]! } : { dFilter, dBiases };
    });
    return { loss: lossValue, outputGradient: data[0]!, gradients };
  } finally {
    tf.dispose([value, ...grads, x, truth]);
    disposeLayerTensors(constants);
  }
}
