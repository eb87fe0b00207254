// Front parameters and Darknet's .weights format for conv layers (biases, BN scales/means/variances,
// then weights in [filters][channels][size][size] order). Our filters live in tfjs [k, k, in, out] order.
import { type Network, mapShapes } from './layers.js';

export interface ConvParams {
  /** tfjs layout [size, size, inChannels, filters]. */
  readonly filter: Float32Array;
  readonly biases: Float32Array;
  /** Present when the layer has batch_normalize=1 (frozen statistics). */
  readonly bn?: { scales: Float32Array; mean: Float32Array; variance: Float32Array };
}

/** Parameters per layer; maxpool layers have none. */
export type FrontParams = (ConvParams | null)[];

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

/** He-style uniform initialisation, as Darknet does (scale sqrt(2 / fan-in)). */
export function randomParams(net: Network, seed: number): FrontParams {
  const random = seededRandom(seed);
  const maps = mapShapes(net);
  return net.layers.map((layer, index) => {
    if (layer.kind !== 'conv') return null;
    const inChannels = maps[index]!.channels;
    const scale = Math.sqrt(2 / (layer.size * layer.size * inChannels));
    const n = layer.filters;
    const filter = fillUniform(new Float32Array(layer.size * layer.size * inChannels * n), random, -scale, scale);
    const biases = fillUniform(new Float32Array(n), random, -0.1, 0.1);
    if (!layer.batchNormalize) return { filter, biases };
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

const HEADER_INTS = 3;

export function encodeWeights(net: Network, params: FrontParams, seen = 0): Uint8Array {
  const arrays: Float32Array[] = [];
  const maps = mapShapes(net);
  net.layers.forEach((layer, index) => {
    const p = params[index];
    if (layer.kind !== 'conv') return;
    if (!p) throw new Error(`layer ${index} is convolutional but has no parameters`);
    arrays.push(p.biases);
    if (layer.batchNormalize) {
      if (!p.bn) throw new Error(`layer ${index} has batch_normalize=1 but no BN parameters`);
      arrays.push(p.bn.scales, p.bn.mean, p.bn.variance);
    }
    arrays.push(convertFilter(p.filter, layer.size, maps[index]!.channels, layer.filters, 'darknet'));
  });
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

export function decodeWeights(net: Network, bytes: Uint8Array, file = '<weights>'): { header: WeightsHeader; params: FrontParams } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 16) throw new Error(`${file}: ${bytes.byteLength} bytes is too short for a Darknet weights header`);
  const major = view.getInt32(0, true);
  const minor = view.getInt32(4, true);
  const revision = view.getInt32(8, true);
  const wideSeen = major * 10 + minor >= 2 && major < 1000 && minor < 1000;
  const seen = wideSeen ? Number(view.getBigUint64(12, true)) : view.getInt32(12, true);
  let offset = wideSeen ? 20 : 16;
  const maps = mapShapes(net);
  const take = (count: number, what: string): Float32Array => {
    const end = offset + count * 4;
    if (end > bytes.byteLength) {
      throw new Error(`${file}: ends at byte ${bytes.byteLength} while reading ${what} (needs ${end}); the file is truncated or for another network`);
    }
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + i * 4, true);
    offset = end;
    return out;
  };
  const params: FrontParams = net.layers.map((layer, index) => {
    if (layer.kind !== 'conv') return null;
    const n = layer.filters;
    const biases = take(n, `layer ${index} biases`);
    const bn = layer.batchNormalize
      ? { scales: take(n, `layer ${index} scales`), mean: take(n, `layer ${index} rolling means`), variance: take(n, `layer ${index} rolling variances`) }
      : undefined;
    const inC = maps[index]!.channels;
    const filter = convertFilter(take(n * inC * layer.size * layer.size, `layer ${index} weights`), layer.size, inC, n, 'tfjs');
    return bn ? { filter, biases, bn } : { filter, biases };
  });
  return { header: { major, minor, revision, seen }, params };
}
