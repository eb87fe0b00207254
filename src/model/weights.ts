// Parameters and Darknet's .weights format: conv layers store biases, BN scales/means/variances, then
// weights [filters][channels][size][size]; connected layers store biases, then weights [outputs][inputs]
// with inputs in Darknet's CHW order. Our filters live in tfjs [k, k, in, out] order; a connected layer
// is a 1x1 conv over its input flattened in NHWC order, so its filter is [1, 1, H*W*C, outputs].
// The tail's layers follow the front's in the file, as Darknet writes a whole network.
import { type ConvLayer, type MapShape, type Network, mapShapes } from './layers.js';
import { type TailLayer, connectedAsConv, flattenedShape, tailShapes } from './tail-layers.js';

export interface ConvParams {
  /** tfjs layout [size, size, inChannels, filters]. */
  readonly filter: Float32Array;
  readonly biases: Float32Array;
  /** Present when the layer has batch_normalize=1 (frozen statistics). */
  readonly bn?: { scales: Float32Array; mean: Float32Array; variance: Float32Array };
}

/** Parameters per layer; maxpool layers have none. */
export type FrontParams = (ConvParams | null)[];

/** Parameters per tail layer (null for layers without); connected layers in their 1x1-conv form. */
export type TailParams = FrontParams;

/**
 * How one layer's parameters are shaped (as a conv with `inChannels` inputs) and stored on disk;
 * null for layers without parameters. `input` is a connected layer's unflattened input map.
 */
export type ParamLayout =
  | { readonly kind: 'conv'; readonly conv: ConvLayer; readonly inChannels: number }
  | { readonly kind: 'connected'; readonly conv: ConvLayer; readonly inChannels: number; readonly input: MapShape }
  | null;

export function frontLayouts(net: Pick<Network, 'input' | 'layers'>): ParamLayout[] {
  const maps = mapShapes(net);
  return net.layers.map((layer, l) => (layer.kind === 'conv' ? { kind: 'conv', conv: layer, inChannels: maps[l]!.channels } : null));
}

/** Layouts of the tail's layers; `input` is the front's output map. */
export function tailLayouts(input: MapShape, layers: readonly TailLayer[]): ParamLayout[] {
  const maps = tailShapes(input, layers);
  return layers.map((layer, l): ParamLayout => {
    if (layer.kind === 'conv') return { kind: 'conv', conv: layer, inChannels: maps[l]!.channels };
    if (layer.kind === 'connected') return { kind: 'connected', conv: connectedAsConv(layer), inChannels: flattenedShape(maps[l]!).channels, input: maps[l]! };
    return null;
  });
}

/** The front's output map: the tail's input. */
export const frontOutput = (net: Pick<Network, 'input' | 'layers'>): MapShape => mapShapes(net)[net.layers.length]!;


export interface WeightsHeader {
  major: number;
  minor: number;
  revision: number;
  seen: number;
}

/** Deterministic small PRNG (mulberry32) so every device and test draws the same numbers. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function fillUniform(values: Float32Array, random: () => number, low: number, high: number): Float32Array {
  for (let i = 0; i < values.length; i++) values[i] = low + (high - low) * random();
  return values;
}

/** He-style uniform initialisation, as Darknet does (scale sqrt(2 / fan-in)), in layer order. */
function randomLayoutParams(layouts: readonly ParamLayout[], random: () => number): FrontParams {
  return layouts.map((layout) => {
    if (!layout) return null;
    const { conv, inChannels } = layout;
    const scale = Math.sqrt(2 / (conv.size * conv.size * inChannels));
    const n = conv.filters;
    const filter = fillUniform(new Float32Array(conv.size * conv.size * inChannels * n), random, -scale, scale);
    const biases = fillUniform(new Float32Array(n), random, -0.1, 0.1);
    if (!conv.batchNormalize) return { filter, biases };
    return {
      filter,
      biases,
      bn: {
        scales: fillUniform(new Float32Array(n), random, 0.5, 1.5),
        mean: fillUniform(new Float32Array(n), random, -0.1, 0.1),
        variance: fillUniform(new Float32Array(n), random, 0.5, 1.5),
      },
    };
  });
}

export function randomParams(net: Network, seed: number): FrontParams {
  return randomLayoutParams(frontLayouts(net), seededRandom(seed));
}

/** The tail draws from its own stream, so adding a tail leaves the front's initial weights as they were. */
const TAIL_STREAM = 0x7a115eed;

export function randomTailParams(net: Network, tail: readonly TailLayer[], seed: number): TailParams {
  return randomLayoutParams(tailLayouts(frontOutput(net), tail), seededRandom((seed ^ TAIL_STREAM) >>> 0));
}

/**
 * Initial weights for training from scratch. Batch norm is frozen here (its statistics are never
 * updated), so BN starts as the identity (scales 1, rolling means 0, variances 1) and biases at 0.
 * Filters are uniform in +-gain * sqrt(2 / fan-in): gain 1 is Darknet's draw, which relies on
 * batch norm's batch statistics to keep activations at unit scale; without them each leaky layer
 * shrinks the signal's variance about threefold, and gain sqrt(3) (the He/Kaiming uniform bound,
 * variance 2 / fan-in) keeps it.
 */
function initialLayoutParams(layouts: readonly ParamLayout[], random: () => number, gain: number): FrontParams {
  return layouts.map((layout) => {
    if (!layout) return null;
    const { conv, inChannels } = layout;
    const scale = gain * Math.sqrt(2 / (conv.size * conv.size * inChannels));
    const n = conv.filters;
    const filter = fillUniform(new Float32Array(conv.size * conv.size * inChannels * n), random, -scale, scale);
    const biases = new Float32Array(n);
    if (!conv.batchNormalize) return { filter, biases };
    return { filter, biases, bn: { scales: new Float32Array(n).fill(1), mean: new Float32Array(n), variance: new Float32Array(n).fill(1) } };
  });
}

/** The gain the training command uses (see initialLayoutParams). */
export const INITIAL_GAIN = Math.sqrt(3);

/** The training command's initial weights (randomParams is the tests' draw: BN far from identity). */
export function initialParams(net: Network, seed: number, gain = INITIAL_GAIN): FrontParams {
  return initialLayoutParams(frontLayouts(net), seededRandom(seed), gain);
}

export function initialTailParams(net: Network, tail: readonly TailLayer[], seed: number, gain = INITIAL_GAIN): TailParams {
  return initialLayoutParams(tailLayouts(frontOutput(net), tail), seededRandom((seed ^ TAIL_STREAM) >>> 0), gain);
}

/**
 * Sets the objectness biases of the convolution that feeds a final [region] so that every anchor
 * starts at objectness `probability` (a prior, as RetinaNet's): the no-object term then starts
 * small instead of dominating the first steps. In place; the convolution is the last one of the
 * tail, else of the front. No-op without a [region].
 */
/** The objectness the training command starts every anchor of a [region] at. */
export const OBJECTNESS_PRIOR = 0.01;

export function setObjectnessPrior(params: FrontParams, tailParams: TailParams, tail: readonly TailLayer[], probability: number): void {
  const region = tail[tail.length - 1];
  if (region?.kind !== 'region') return;
  // A device without the tail holds no tail parameters: whether the tail has weighted layers decides.
  const inTail = tail.some((layer) => layer.kind === 'conv' || layer.kind === 'connected');
  const last = [...(inTail ? tailParams : params)].reverse().find((p) => p);
  if (!last) return;
  const entries = 5 + region.classes;
  const logit = Math.log(probability / (1 - probability));
  for (let a = 0; a < region.anchors.length; a++) last.biases[a * entries + 4] = logit;
}

/** Darknet stores filters [out][in][kh][kw]; tfjs wants [kh][kw][in][out]. */
function convertFilter(src: Float32Array, size: number, inC: number, outC: number, to: 'tfjs' | 'darknet'): Float32Array {
  const dst = new Float32Array(src.length);
  for (let o = 0; o < outC; o++)
    for (let c = 0; c < inC; c++)
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) {
          const darknet = ((o * inC + c) * size + y) * size + x;
          const tfjs = ((y * size + x) * inC + c) * outC + o;
          if (to === 'tfjs') dst[tfjs] = src[darknet]!;
          else dst[darknet] = src[tfjs]!;
        }
  return dst;
}

/**
 * Darknet stores connected weights [out][in] with in = (c * H + y) * W + x (or [in][out] when
 * `transposed`, in files of version > 1000); ours are [in'][out] with in' = (y * W + x) * C + c.
 */
function convertConnected(src: Float32Array, input: MapShape, outputs: number, to: 'tfjs' | 'darknet', transposed = false): Float32Array {
  const { height: H, width: W, channels: C } = input;
  const inputs = H * W * C;
  const dst = new Float32Array(src.length);
  for (let o = 0; o < outputs; o++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const i = (c * H + y) * W + x;
          const darknet = transposed ? i * outputs + o : o * inputs + i;
          const tfjs = ((y * W + x) * C + c) * outputs + o;
          if (to === 'tfjs') dst[tfjs] = src[darknet]!;
          else dst[darknet] = src[tfjs]!;
        }
  return dst;
}

/** The arrays of each layer in Darknet's file order. */
function layoutArrays(layouts: readonly ParamLayout[], params: FrontParams, what: string): Float32Array[] {
  const arrays: Float32Array[] = [];
  layouts.forEach((layout, index) => {
    if (!layout) return;
    const p = params[index];
    if (!p) throw new Error(`${what} layer ${index} has weights but no parameters`);
    arrays.push(p.biases);
    if (layout.kind === 'connected') {
      arrays.push(convertConnected(p.filter, layout.input, layout.conv.filters, 'darknet'));
      return;
    }
    if (layout.conv.batchNormalize) {
      if (!p.bn) throw new Error(`${what} layer ${index} has batch_normalize=1 but no BN parameters`);
      arrays.push(p.bn.scales, p.bn.mean, p.bn.variance);
    }
    arrays.push(convertFilter(p.filter, layout.conv.size, layout.inChannels, layout.conv.filters, 'darknet'));
  });
  return arrays;
}

const HEADER_INTS = 3;

/** A full Darknet file: the front's layers, then (when given) the tail's. */
export function encodeWeights(net: Network, params: FrontParams, seen = 0, tail?: { layers: readonly TailLayer[]; params: TailParams }): Uint8Array {
  const arrays = layoutArrays(frontLayouts(net), params, 'front');
  if (tail) arrays.push(...layoutArrays(tailLayouts(frontOutput(net), tail.layers), tail.params, 'tail'));
  const floats = arrays.reduce((sum, a) => sum + a.length, 0);
  const bytes = new Uint8Array(HEADER_INTS * 4 + 8 + floats * 4);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, 0, true); // major
  view.setInt32(4, 2, true); // minor: 0.2 stores "seen" as 64 bits
  view.setInt32(8, 0, true);
  view.setBigUint64(12, BigInt(seen), true);
  let offset = 20;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++, offset += 4) view.setFloat32(offset, a[i]!, true);
  }
  return bytes;
}

type Take = (count: number, what: string) => Float32Array;

function decodeLayouts(layouts: readonly ParamLayout[], take: Take, prefix: string, transposed: boolean): FrontParams {
  return layouts.map((layout, index) => {
    if (!layout) return null;
    const n = layout.conv.filters;
    const name = `${prefix}layer ${index}`;
    const biases = take(n, `${name} biases`);
    if (layout.kind === 'connected') {
      return { filter: convertConnected(take(n * layout.inChannels, `${name} weights`), layout.input, n, 'tfjs', transposed), biases };
    }
    const bn = layout.conv.batchNormalize
      ? { scales: take(n, `${name} scales`), mean: take(n, `${name} rolling means`), variance: take(n, `${name} rolling variances`) }
      : undefined;
    const size = layout.conv.size;
    const filter = convertFilter(take(n * layout.inChannels * size * size, `${name} weights`), size, layout.inChannels, n, 'tfjs');
    return bn ? { filter, biases, bn } : { filter, biases };
  });
}

/**
 * Reads the front's layers and, when `tail` is given, the tail's, which must then end the file.
 * Without a tail, bytes after the front are ignored, as Darknet does when it loads the first layers
 * of a larger network's file.
 */
export function decodeWeights(
  net: Network, bytes: Uint8Array, file = '<weights>', tail?: readonly TailLayer[],
): { header: WeightsHeader; params: FrontParams; tailParams?: TailParams } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 16) throw new Error(`${file}: ${bytes.byteLength} bytes is too short for a Darknet weights header`);
  const major = view.getInt32(0, true);
  const minor = view.getInt32(4, true);
  const revision = view.getInt32(8, true);
  const wideSeen = major * 10 + minor >= 2 && major < 1000 && minor < 1000;
  // Darknet's own rule: files of these versions hold connected weights transposed.
  const transposed = major > 1000 || minor > 1000;
  const seen = wideSeen ? Number(view.getBigUint64(12, true)) : view.getInt32(12, true);
  let offset = wideSeen ? 20 : 16;
  const take: Take = (count, what) => {
    const end = offset + count * 4;
    if (end > bytes.byteLength) {
      throw new Error(`${file}: ends at byte ${bytes.byteLength} while reading ${what} (needs ${end}); the file is truncated or for another network`);
    }
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + i * 4, true);
    offset = end;
    return out;
  };
  const header = { major, minor, revision, seen };
  const params = decodeLayouts(frontLayouts(net), take, '', transposed);
  if (!tail) return { header, params };
  const tailParams = decodeLayouts(tailLayouts(frontOutput(net), tail), take, 'tail ', transposed);
  if (offset !== bytes.byteLength) {
    throw new Error(`${file}: ${bytes.byteLength - offset} bytes remain after the last tail layer (the model's weights end at byte ${offset}); the file is for another network`);
  }
  return { header, params, tailParams };
}
