// Single-process unpartitioned training under tf.grad, the ground truth for distributed training:
// the same synthetic data, loss and Darknet SGD as the runtime, with gradients from autodiff.
import * as tf from '@tensorflow/tfjs';
import { referenceGradients } from '../../src/fused/reference.js';
import { type Network, mapShapes } from '../../src/model/layers.js';
import { type TailLayer, tailClasses } from '../../src/model/tail-layers.js';
import { type FrontParams, type TailParams, frontOutput } from '../../src/model/weights.js';
import { applyUpdate, newOptimizerState } from '../../src/train/optimizer.js';
import { syntheticImages, syntheticLabels, syntheticTarget } from '../../src/train/synthetic.js';
import { wholeNetworkGradients } from './reference-tail.js';

const output0Size = (net: Network) => {
  const m = mapShapes(net)[net.layers.length]!;
  return m.height * m.width * m.channels;
};

export async function referenceTraining(net: Network, params: FrontParams, steps: number, seed: number): Promise<FrontParams> {
  const state = newOptimizerState(params, net.hyper);
  const batch = net.hyper.batch;
  const target = syntheticTarget(net, batch, seed);
  for (let step = 0; step < steps; step++) {
    const images = syntheticImages(net, batch, seed, step);
    const perImage = output0Size(net);
    const loss = (output: tf.Tensor4D) => tf.mul(0.5 / perImage, tf.sum(tf.square(tf.sub(output, tf.tensor(target, output.shape))))) as tf.Scalar;
    const { weightGradients } = await referenceGradients(net, params, images, loss, batch);
    applyUpdate(params, state, weightGradients, net.hyper, step);
  }
  return params;
}

/** The same for a model with a tail: whole-network tf.grad (front reference + independent tail), cross-entropy on synthetic labels. */
export async function referenceTailTraining(
  net: Network, tail: readonly TailLayer[], params: FrontParams, tailParams: TailParams, steps: number, seed: number,
  /** The batch of each step; by default the trainer's synthetic images and labels. */
  batchOf?: (step: number) => { images: Float32Array; labels: Int32Array },
): Promise<{ params: FrontParams; tailParams: TailParams }> {
  const state = newOptimizerState(params, net.hyper);
  const tailState = newOptimizerState(tailParams, net.hyper);
  const batch = net.hyper.batch;
  const classes = tailClasses(frontOutput(net), tail);
  for (let step = 0; step < steps; step++) {
    const { images, labels } = batchOf ? batchOf(step) : { images: syntheticImages(net, batch, seed, step), labels: syntheticLabels(batch, classes, seed, step) };
    const whole = await wholeNetworkGradients(net, params, tail, tailParams, images, labels, batch);
    applyUpdate(params, state, whole.front.weightGradients, net.hyper, step);
    applyUpdate(tailParams, tailState, whole.tail, net.hyper, step);
  }
  return { params, tailParams };
}

/** Largest relative difference over all parameters (relative to each tensor's largest magnitude). */
/** Worst over arrays of max |a - b| / max |b|; `floor` bounds the denominator below (arrays that start at 0). */
export function paramsRelativeError(a: FrontParams, b: FrontParams, floor = 0): number {
  let worst = 0;
  a.forEach((p, l) => {
    const q = b[l];
    if (!p || !q) return;
    for (const [x, y] of [[p.filter, q.filter], [p.biases, q.biases], ...(p.bn && q.bn ? [[p.bn.scales, q.bn.scales]] : [])] as [Float32Array, Float32Array][]) {
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < x.length; i++) {
        diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
        scale = Math.max(scale, Math.abs(y[i]!));
      }
      scale = Math.max(scale, floor);
      worst = Math.max(worst, scale === 0 ? diff : diff / scale);
    }
  });
  return worst;
}
