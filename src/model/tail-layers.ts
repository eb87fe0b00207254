// Layers of the tail (run on the head device after the tile-partitioned front) and their shapes.
// Conv and maxpool layers are the front's own descriptions; a connected layer is computed, stored and
// updated as a 1x1 conv over its flattened input, so the front's parameter code serves it too.
import { type Activation, type ConvLayer, type FrontLayer, type MapShape, type Network, convLayer, outputExtent } from './layers.js';

/** Darknet's [avgpool]: the mean of every channel over the whole map. */
export interface AvgpoolLayer {
  readonly kind: 'avgpool';
}

/** Darknet's [connected]: every output sees every input of the previous map. */
export interface ConnectedLayer {
  readonly kind: 'connected';
  readonly outputs: number;
  readonly activation: Activation;
}

/** Darknet's [softmax] with its cross-entropy loss; always the last layer. */
export interface SoftmaxLayer {
  readonly kind: 'softmax';
}

/** A region anchor: a prior box size in grid cells of the region's input map. */
export interface Anchor {
  readonly w: number;
  readonly h: number;
}

/**
 * Darknet's [region] (YOLOv2) with 4 coords and a softmax over classes; always the last layer. Per
 * cell and anchor its input holds x, y, w, h, objectness, then one logit per class.
 */
export interface RegionLayer {
  readonly kind: 'region';
  readonly classes: number;
  /** One per predicted box of a cell (Darknet's `num`). */
  readonly anchors: readonly Anchor[];
  /** Predictions whose best IoU with a truth exceeds this get no no-object term. */
  readonly thresh: number;
  /** Choose a truth's anchor by the anchor's shape rather than the predicted box's. */
  readonly biasMatch: boolean;
  /** Objectness target of a responsible anchor: the IoU of its box with the truth instead of 1. */
  readonly rescore: boolean;
  readonly objectScale: number;
  readonly noobjectScale: number;
  readonly classScale: number;
  readonly coordScale: number;
  /**
   * x, y and objectness terms: squared error of the logistic (the delta times the logistic's
   * gradient, YOLOv2 on the GPU), or cross-entropy of the logistic (the delta itself, as YOLOv3).
   */
  readonly logisticGradient: boolean;
}

/** Entries per anchor in a region's input: x, y, w, h, objectness, then the classes. */
export const regionEntries = (layer: Pick<RegionLayer, 'classes'>): number => 5 + layer.classes;

export type TailLayer = FrontLayer | AvgpoolLayer | ConnectedLayer | SoftmaxLayer | RegionLayer;

/** A loss layer ends every non-empty tail. */
export type LossLayer = SoftmaxLayer | RegionLayer;

/** What the tail's loss is computed against: one class per image (softmax) or boxes per image (region). */
export type TruthKind = 'classes' | 'boxes';

/** Shapes of every tail map: index 0 is the front's output, index l+1 the output of tail layer l. */
export function tailShapes(input: MapShape, layers: readonly TailLayer[]): MapShape[] {
  const maps: MapShape[] = [input];
  layers.forEach((layer, index) => {
    const prev = maps[maps.length - 1]!;
    let next: MapShape;
    if (layer.kind === 'conv' || layer.kind === 'maxpool') {
      next = { height: outputExtent(layer, prev.height), width: outputExtent(layer, prev.width), channels: layer.kind === 'conv' ? layer.filters : prev.channels };
      if (next.height < 1 || next.width < 1) {
        throw new Error(`tail layer ${index} (${layer.kind} size ${layer.size} stride ${layer.stride}) turns a ${prev.height}x${prev.width} map into ${next.height}x${next.width}: the input is too small`);
      }
    } else if (layer.kind === 'avgpool') next = { height: 1, width: 1, channels: prev.channels };
    else if (layer.kind === 'connected') next = { height: 1, width: 1, channels: layer.outputs };
    else if (layer.kind === 'region') {
      const expected = layer.anchors.length * regionEntries(layer);
      if (prev.channels !== expected) {
        throw new Error(`tail layer ${index} (region) gets ${prev.channels} channels: ${layer.anchors.length} anchors x (4 coords + 1 objectness + ${layer.classes} classes) need ${expected}`);
      }
      next = prev;
    } else {
      // Darknet's softmax runs over the flattened map in its CHW order; over a 1x1 map that order is
      // the channel order, which is the only case the labels here can address unambiguously.
      if (prev.height !== 1 || prev.width !== 1) {
        throw new Error(`tail layer ${index} (softmax) gets a ${prev.height}x${prev.width}x${prev.channels} map: it needs a 1x1 map (put [avgpool] or [connected] before it)`);
      }
      if (prev.channels < 2) throw new Error(`tail layer ${index} (softmax) gets ${prev.channels} channel: a softmax needs at least 2 classes`);
      next = prev;
    }
    maps.push(next);
  });
  return maps;
}

/** The number of classes: the size of the softmax at the end of the tail, or the region's classes. */
export function tailClasses(input: MapShape, layers: readonly TailLayer[]): number {
  const maps = tailShapes(input, layers);
  const last = layers[layers.length - 1];
  return last?.kind === 'region' ? last.classes : maps[maps.length - 1]!.channels;
}

/** The tail's loss layer; a front-only model has none. */
export function lossLayer(layers: readonly TailLayer[]): LossLayer | null {
  const last = layers[layers.length - 1];
  if (last === undefined) return null;
  if (last.kind !== 'softmax' && last.kind !== 'region') throw new Error(`the tail ends with ${last.kind}, not with a loss layer (softmax or region)`);
  return last;
}

/** The truth a tail's loss needs: class indices for [softmax], boxes for [region]; null without a tail. */
export function tailTruthKind(layers: readonly TailLayer[]): TruthKind | null {
  const loss = lossLayer(layers);
  if (loss === null) return null;
  return loss.kind === 'region' ? 'boxes' : 'classes';
}

/** The 1x1 conv over the flattened input ([batch, 1, 1, H*W*C]) that computes a connected layer. */
export function connectedAsConv(layer: ConnectedLayer): ConvLayer {
  return convLayer(layer.outputs, 1, 1, { pad: 0, activation: layer.activation, batchNormalize: false });
}

/** Input of a layer with parameters, as its conv form sees it. */
export function flattenedShape(map: MapShape): MapShape {
  return { height: 1, width: 1, channels: map.height * map.width * map.channels };
}

/**
 * `--front N`: the first N layers stay the tile-partitioned front. With a tail, the front's later
 * layers run first in the tail, so the network is unchanged; a front-only model drops them and
 * trains its first N layers against the synthetic target.
 */
export function limitFront(net: Network, tail: readonly TailLayer[], front: number): { net: Network; tail: TailLayer[] } {
  if (!Number.isInteger(front) || front < 1 || front > net.layers.length) throw new Error(`the front must keep 1..${net.layers.length} layers, got ${front}`);
  const moved = tail.length > 0 ? net.layers.slice(front) : [];
  return { net: { ...net, layers: net.layers.slice(0, front) }, tail: [...moved, ...tail] };
}

/** One-line description for logs: "conv 3x3/1 16, avgpool, connected 10, softmax" or "..., region 5 anchors 3 classes". */
export function describeTail(layers: readonly TailLayer[]): string {
  return layers.map((l) => {
    if (l.kind === 'conv') return `conv ${l.size}x${l.size}/${l.stride} ${l.filters}`;
    if (l.kind === 'maxpool') return `maxpool ${l.size}x${l.size}/${l.stride}`;
    if (l.kind === 'connected') return `connected ${l.outputs}`;
    if (l.kind === 'region') return `region ${l.anchors.length} anchors ${l.classes} classes`;
    return l.kind;
  }).join(', ');
}
