// The tail on the head device: from the whole front output through the tail layers to the loss
// (softmax's cross-entropy or the region's detection loss), and by TensorFlow.js autodiff the
// gradient of that loss w.r.t. the front output and every tail parameter.
import * as tf from '@tensorflow/tfjs';
import { type ConvTensors, disposeLayerTensors } from '../fused/layer-ops.js';
import type { MapShape } from '../model/layers.js';
import { type TailLayer, lossLayer, tailShapes } from '../model/tail-layers.js';
import { type TailParams, tailLayouts } from '../model/weights.js';
import type { WeightGradient } from './optimizer.js';
import { type TailLossOptions, type TailTruth, lossOfInput } from './tail-loss.js';
import { tailForward, tailTensors } from './tail-forward.js';

export type { TailTruth } from './tail-loss.js';

export interface TailResult {
  /**
   * The loss summed over the batch: for [softmax], Darknet's cost -sum over images of log p[label];
   * for [region], the scalar whose gradient is Darknet's delta (see region-loss.ts).
   */
  readonly loss: number;
  /** dLoss/dOutput over the whole front output, [batch, H, W, C]. */
  readonly outputGradient: Float32Array;
  /** Per tail layer; null for layers without parameters. */
  readonly gradients: (WeightGradient | null)[];
}

/**
 * One step of the tail. `output` is the front's whole output map [batch, H, W, C] (input: its shape),
 * `truth` one class index per image for a [softmax] tail or boxes per image for a [region] tail
 * (tailTruthKind says which). Parameters are read, not changed.
 */
export async function runTail(
  input: MapShape, layers: readonly TailLayer[], params: TailParams, output: Float32Array, truth: TailTruth, batch: number, options: TailLossOptions = {},
): Promise<TailResult> {
  const loss = lossLayer(layers);
  if (!loss) throw new Error('the model has no tail to run');
  const maps = tailShapes(input, layers);
  const lossOf = lossOfInput(loss, maps[maps.length - 2]!, truth, batch, options);
  const expected = batch * input.height * input.width * input.channels;
  if (output.length !== expected) throw new Error(`the tail got ${output.length} floats of front output, a ${batch}x${input.height}x${input.width}x${input.channels} map has ${expected}`);

  const layouts = tailLayouts(input, layers);
  const constants = tailTensors(layouts, params);
  const x = tf.tensor4d(output, [batch, input.height, input.width, input.channels]);
  // Differentiated: the front output, then per layer with weights its filter, biases and BN scales.
  const args: tf.Tensor[] = [x];
  constants.forEach((c) => c && args.push(c.filter, c.biases, ...(c.bn ? [c.bn.scales] : [])));
  const lossOfArgs = (...xs: tf.Tensor[]): tf.Scalar => {
    let at = 1;
    const tensors = constants.map((c): ConvTensors | null => {
      if (!c) return null;
      const filter = xs[at++] as tf.Tensor4D;
      const biases = xs[at++] as tf.Tensor1D;
      return c.bn ? { filter, biases, bn: { ...c.bn, scales: xs[at++] as tf.Tensor1D } } : { filter, biases };
    });
    return lossOf(tailForward(layers, layouts, tensors, xs[0] as tf.Tensor4D));
  };
  const { value, grads } = tf.valueAndGrads(lossOfArgs)(args);
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
    tf.dispose([value, ...grads, x]);
    disposeLayerTensors(constants);
  }
}
