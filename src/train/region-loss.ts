// A scalar whose gradient w.r.t. the region's input is minus Darknet's region delta, term by term:
//   x, y, objectness: delta = s (t - σ(z)) σ'(z)  <-  0.5 s (σ(z) - t)^2
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
  const activated = tf.concat([tf.sigmoid(xy), wh, tf.sigmoid(objectness)], 4);
  const termShape = [batch, height, width, num, BOX_TERMS];
  const error = tf.sub(activated, tf.tensor(targets.target, termShape));
  const squared = tf.mul(0.5, tf.sum(tf.mul(tf.tensor(targets.weight, termShape), tf.square(error))));
  const classWeight = tf.tensor(targets.classWeight, [batch, height, width, num, layer.classes]);
  const crossEntropy = tf.neg(tf.sum(tf.mul(classWeight, tf.logSoftmax(classes))));
  return tf.add(squared, crossEntropy) as tf.Scalar;
}
