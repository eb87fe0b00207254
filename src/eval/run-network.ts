// Inference of the whole network on one device, unpartitioned: the front over the whole map (the
// same ops as the tiles and the tf.grad reference), then the tail up to its loss layer. For
// evaluation on the head and for `edge detect`; no gradients, no arenas.
import * as tf from '@tensorflow/tfjs';
import { disposeLayerTensors, frontTensors } from '../fused/layer-ops.js';
import { forwardLayers } from '../fused/tile-compute.js';
import { type MapShape, type Network, mapShapes } from '../model/layers.js';
import { type TailLayer, tailShapes } from '../model/tail-layers.js';
import { type FrontParams, type TailParams, tailLayouts } from '../model/weights.js';
import { fusedRegions } from '../tiles/fused-regions.js';
import { wholeMap } from '../tiles/region.js';
import { tailForward, tailTensors } from '../train/tail-forward.js';

export interface Model {
  readonly net: Network;
  readonly params: FrontParams;
  readonly tail: readonly TailLayer[];
  readonly tailParams: TailParams;
}

export interface NetworkOutput {
  /** [batch, H, W, C] NHWC floats. */
  readonly values: Float32Array;
  /** The shape of one image's map. */
  readonly shape: MapShape;
}

function checkImages(net: Network, images: Float32Array, batch: number): void {
  const { height, width, channels } = net.input;
  const expected = batch * height * width * channels;
  if (images.length !== expected) throw new Error(`got ${images.length} input floats, ${batch} images of ${height}x${width}x${channels} are ${expected}`);
}

/** The front's output for `images` [batch, H, W, C] at the network's input size. */
export async function runFront(net: Network, params: FrontParams, images: Float32Array, batch: number): Promise<NetworkOutput> {
  checkImages(net, images, batch);
  const maps = mapShapes(net);
  const shape = maps[maps.length - 1]!;
  const regions = fusedRegions(net.layers, maps, 0, net.layers.length - 1, wholeMap(shape.height, shape.width));
  const tensors = frontTensors(net, params);
  const input = tf.tensor4d(images, [batch, net.input.height, net.input.width, net.input.channels]);
  try {
    const output = forwardLayers(net.layers, tensors, regions, input);
    const values = (await output.data()) as Float32Array;
    output.dispose();
    return { values, shape };
  } finally {
    input.dispose();
    disposeLayerTensors(tensors);
  }
}

/**
 * The input of the tail's loss layer for `images`: a softmax's logits (1x1 map) or a region's raw
 * predictions, which the decoders turn into probabilities and boxes. A front-only model gives the
 * front's output.
 */
export async function runNetwork(model: Model, images: Float32Array, batch: number): Promise<NetworkOutput> {
  const front = await runFront(model.net, model.params, images, batch);
  if (model.tail.length === 0) return front;
  const maps = tailShapes(front.shape, model.tail);
  const layouts = tailLayouts(front.shape, model.tail);
  const tensors = tailTensors(layouts, model.tailParams);
  try {
    const output = tf.tidy(() => tailForward(model.tail, layouts, tensors, tf.tensor4d(front.values, [batch, front.shape.height, front.shape.width, front.shape.channels])));
    const values = (await output.data()) as Float32Array;
    output.dispose();
    return { values, shape: maps[maps.length - 2]! };
  } finally {
    disposeLayerTensors(tensors);
  }
}
