// A scalar whose gradient w.r.t. the region's input is minus Darknet's region delta, term by term:
//   x, y, objectness: delta = s (t - σ(z)) σ'(z)  <-  0.5 s (σ(z) - t)^2
//     or, logistic_gradient=0: delta = s (t - σ(z)) <-  s (softplus(z) - t z - H(t)), the
//     cross-entropy of σ(z) against t less its minimum H(t) (so a perfect prediction costs 0)
//   w, h:             delta = s (t - z)            <-  0.5 s (z - t)^2
//   classes:          delta = s (onehot - p)       <-  -s Σ onehot log softmax(z)
// The weights s and targets t come from regionTargets as constants.
import * as tf from '@tensorflow/tfjs';
import { type RegionLayer, regionEntries } from '../model/tail-layers.js';
import { BOX_TERMS, type RegionTargets } from './region-targets.js';

/** The region loss of `z` [batch, H, W, anchors * (5 + classes)], summed over the batch. */
export function regionLoss(z: tf.Tensor4D, layer: RegionLayer, targets: RegionTargets): tf.Scalar {
  const [batch, height, width] = z.shape;
  const num = layer.anchors.length;
  const perAnchor = tf.reshape(z, [batch, height, width, num, regionEntries(layer)]);
  const [xy, wh, objectness, classes] = tf.split(perAnchor, [2, 2, 1, layer.classes], 4) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
  const termShape = [batch, height, width, num, BOX_TERMS];
  const weight = tf.tensor(targets.weight, termShape);
  const target = tf.tensor(targets.target, termShape);
  const classWeight = tf.tensor(targets.classWeight, [batch, height, width, num, layer.classes]);
  const classCrossEntropy = tf.neg(tf.sum(tf.mul(classWeight, tf.logSoftmax(classes))));
  if (layer.logisticGradient) {
    const activated = tf.concat([tf.sigmoid(xy), wh, tf.sigmoid(objectness)], 4);
    const squared = tf.mul(0.5, tf.sum(tf.mul(weight, tf.square(tf.sub(activated, target)))));
    return tf.add(squared, classCrossEntropy) as tf.Scalar;
  }
  // w and h keep their squared error; x, y and objectness take the cross-entropy of their logistic.
  const [weightXY, weightWH, weightObjectness] = tf.split(weight, [2, 2, 1], 4) as [tf.Tensor, tf.Tensor, tf.Tensor];
  const [targetXY, targetWH, targetObjectness] = tf.split(target, [2, 2, 1], 4) as [tf.Tensor, tf.Tensor, tf.Tensor];
  const squared = tf.mul(0.5, tf.sum(tf.mul(weightWH, tf.square(tf.sub(wh, targetWH)))));
  const logits = tf.concat([xy, objectness], 4);
  const logisticWeight = tf.concat([weightXY, weightObjectness], 4);
  const logisticTarget = tf.concat([targetXY, targetObjectness], 4);
  const crossEntropy = tf.sum(tf.mul(logisticWeight, tf.sub(tf.sub(tf.softplus(logits), tf.mul(logisticTarget, logits)), binaryEntropy(logisticTarget))));
  return tf.addN([squared, crossEntropy, classCrossEntropy]) as tf.Scalar;
}

/** -t log t - (1 - t) log(1 - t), 0 at t = 0 and t = 1. */
function binaryEntropy(t: tf.Tensor): tf.Tensor {
  const entropy = (p: tf.Tensor): tf.Tensor => tf.mul(p, tf.log(tf.maximum(p, 1e-30)));
  return tf.neg(tf.add(entropy(t), entropy(tf.sub(1, t))));
}
