// The tail's layers before its loss layer, on whole maps with the padding materialised as the front
// does; a connected layer is a 1x1 conv over its flattened input. Shared by training (under autodiff,
// with ConvTensors without `constants`) and inference.
import * as tf from '@tensorflow/tfjs';
import { type ConvTensors, convLayerOutput, convTensors, maxpoolForward, paddingValue } from '../fused/layer-ops.js';
import type { ConvLayer, MaxpoolLayer } from '../model/layers.js';
import type { TailLayer } from '../model/tail-layers.js';
import type { ParamLayout, TailParams } from '../model/weights.js';

/** Tensors of every tail layer with parameters (null for the others); dispose with disposeLayerTensors. */
export function tailTensors(layouts: readonly ParamLayout[], params: TailParams): (ConvTensors | null)[] {
  return layouts.map((layout, l) => {
    if (!layout) return null;
    const p = params[l];
    if (!p) throw new Error(`tail layer ${l} has weights but no parameters`);
    return convTensors(p, layout.conv, layout.inChannels);
  });
}

/** Zeros (conv) or -inf (maxpool, whose windows skip positions outside the map) around the map. */
function padMap(x: tf.Tensor4D, layer: ConvLayer | MaxpoolLayer): tf.Tensor4D {
  const before = layer.padBefore;
  const after = layer.padTotal - layer.padBefore;
  if (before === 0 && after === 0) return x;
  return tf.pad(x, [[0, 0], [before, after], [before, after], [0, 0]], paddingValue(layer));
}

/** The loss layer's input from the front's output `x` [batch, H, W, C]; `tensors` per tail layer. */
export function tailForward(layers: readonly TailLayer[], layouts: readonly ParamLayout[], tensors: readonly (ConvTensors | null)[], x: tf.Tensor4D): tf.Tensor4D {
  const batch = x.shape[0];
  let h = x;
  layers.forEach((layer, l) => {
    if (layer.kind === 'conv') h = convLayerOutput(layer, tensors[l]!, padMap(h, layer));
    else if (layer.kind === 'maxpool') h = maxpoolForward(layer, padMap(h, layer));
    else if (layer.kind === 'avgpool') h = tf.mean(h, [1, 2], true);
    else if (layer.kind === 'connected') h = convLayerOutput(layouts[l]!.conv, tensors[l]!, tf.reshape(h, [batch, 1, 1, -1]));
  });
  return h;
}
