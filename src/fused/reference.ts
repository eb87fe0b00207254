// The unpartitioned front under tf.grad: the ground truth every tiled configuration must match.
import * as tf from '@tensorflow/tfjs';
import type { Network } from '../model/layers.js';
import { mapShapes } from '../model/layers.js';
import type { FrontParams } from '../model/weights.js';
import { fusedRegions } from '../tiles/fused-regions.js';
import { wholeMap } from '../tiles/region.js';
import { type ConvTensors, type LayerTensors, disposeLayerTensors, frontTensors } from './layer-ops.js';
import { forwardLayers } from './tile-compute.js';

export interface ReferenceGradients {
  readonly inputGradient: Float32Array;
  /** Per layer (null for maxpool): gradients of filter [k,k,in,out], biases and BN scales. */
  readonly weightGradients: ({ dFilter: Float32Array; dBiases: Float32Array; dScales?: Float32Array } | null)[];
  readonly output: Float32Array;
}

/** A scalar loss of the front's output [batch, H, W, C]. */
export type FrontLoss = (output: tf.Tensor4D) => tf.Scalar;

/** loss = sum(output * weights): the fixed random linear loss of `verify`. */
export function linearLoss(weights: Float32Array): FrontLoss {
  return (output) => tf.sum(tf.mul(output, tf.tensor(weights, output.shape)));
}

/** Gradients of `loss(front(input))` with respect to the input and every parameter, by tf.grad. */
export async function referenceGradients(
  net: Network, params: FrontParams, input: Float32Array, frontLoss: FrontLoss, batch: number,
): Promise<ReferenceGradients> {
  const maps = mapShapes(net);
  const last = maps[maps.length - 1]!;
  const regions = fusedRegions(net.layers, maps, 0, net.layers.length - 1, wholeMap(last.height, last.width));
  const constants = frontTensors(net, params);
  const inputTensor = tf.tensor4d(input, [batch, maps[0]!.height, maps[0]!.width, maps[0]!.channels]);
  // The differentiated arguments: input, then per conv layer filter, biases and (BN) scales.
  const args: tf.Tensor[] = [inputTensor];
  constants.forEach((c) => c && args.push(c.filter, c.biases, ...(c.bn ? [c.bn.scales] : [])));
  const loss = (...xs: tf.Tensor[]): tf.Scalar => {
    let at = 1;
    const layerTensors = constants.map((c): LayerTensors => {
      if (!c) return null;
      const filter = xs[at++] as tf.Tensor4D;
      const biases = xs[at++] as tf.Tensor1D;
      const bn = c.bn ? { ...c.bn, scales: xs[at++] as tf.Tensor1D } : undefined;
      return (bn ? { filter, biases, bn } : { filter, biases }) satisfies ConvTensors;
    });
    return frontLoss(forwardLayers(net.layers, layerTensors, regions, xs[0] as tf.Tensor4D));
  };
  const grads = tf.grads(loss)(args);
  const data = await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array));
  const output = forwardLayers(net.layers, constants, regions, inputTensor);
  const outputData = (await output.data()) as Float32Array;
  tf.dispose([...grads, inputTensor, output]);
  disposeLayerTensors(constants);

  let at = 1;
  const weightGradients = constants.map((c) => {
    if (!c) return null;
    const dFilter = data[at++]!;
    const dBiases = data[at++]!;
    return c.bn ? { dFilter, dBiases, dScales: data[at++]! } : { dFilter, dBiases };
  });
  return { inputGradient: data[0]!, weightGradients, output: outputData };
}
