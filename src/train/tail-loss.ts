// The loss of the tail's last layer against the truth of the batch: Darknet's softmax cross-entropy
// against one class per image, or its region loss against boxes per image.
import * as tf from '@tensorflow/tfjs';
import type { Box } from '../data/detection-labels.js';
import type { MapShape } from '../model/layers.js';
import type { LossLayer } from '../model/tail-layers.js';
import { regionLoss } from './region-loss.js';
import { type RegionTargetOptions, checkTruths, regionTargets } from './region-targets.js';

/** Class indices (Int32Array, one per image) for a [softmax] tail; boxes per image for a [region] tail. */
export type TailTruth = Int32Array | readonly (readonly Box[])[];

export type TailLossOptions = RegionTargetOptions;

/** A function of the loss layer's input (under autodiff) to the summed loss of the batch. */
export type LossOfInput = (h: tf.Tensor4D) => tf.Scalar;

function softmaxLoss(labels: Int32Array, classes: number, batch: number): LossOfInput {
  if (labels.length !== batch) throw new Error(`the tail got ${labels.length} labels for a batch of ${batch}`);
  labels.forEach((label, i) => {
    if (!Number.isInteger(label) || label < 0 || label >= classes) throw new Error(`label ${label} of image ${i} is outside the softmax's ${classes} classes`);
  });
  // Log-softmax keeps the loss finite when a probability underflows; its gradient is Darknet's
  // softmax delta p - truth.
  return (h) => {
    const truth = tf.oneHot(tf.tensor1d(labels, 'int32'), classes).toFloat();
    return tf.neg(tf.sum(tf.mul(truth, tf.logSoftmax(tf.reshape(h, [batch, -1]))))) as tf.Scalar;
  };
}

/**
 * The loss as a function of the loss layer's input `input` (its shape), checking `truth` first.
 * A region reads its input's values once, in the forward pass, to choose masks and targets.
 */
export function lossOfInput(layer: LossLayer, input: MapShape, truth: TailTruth, batch: number, options: TailLossOptions = {}): LossOfInput {
  if (layer.kind === 'softmax') {
    if (!(truth instanceof Int32Array)) throw new Error('a [softmax] tail classifies: it needs one class index per image (Int32Array), not boxes');
    return softmaxLoss(truth, input.channels, batch);
  }
  if (truth instanceof Int32Array) throw new Error('a [region] tail detects: it needs boxes per image, not class indices');
  checkTruths(truth, batch, layer.classes);
  return (h) => regionLoss(h, layer, regionTargets(h.dataSync() as Float32Array, input, batch, layer, truth, options));
}
