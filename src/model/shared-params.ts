// Front parameters in one SharedArrayBuffer, so compute workers read the values the optimizer updates
// in place without a copy. The layout follows from the network alone: every thread derives it.
import { type Network, mapShapes } from './layers.js';
import type { FrontParams } from './weights.js';

function layerSizes(net: Network): ({ filter: number; channels: number; bn: boolean } | null)[] {
  const maps = mapShapes(net);
  return net.layers.map((layer, l) =>
    layer.kind === 'conv' ? { filter: layer.size * layer.size * maps[l]!.channels * layer.filters, channels: layer.filters, bn: layer.batchNormalize } : null);
}

/** Floats of every layer's biases and batch norm (the parameters but the filters). */
export function affineParamsFloats(net: Network): number {
  return layerSizes(net).reduce((sum, s) => sum + (s ? s.channels * (s.bn ? 4 : 1) : 0), 0);
}

export function sharedParamsFloats(net: Network): number {
  return layerSizes(net).reduce((sum, s) => sum + (s ? s.filter : 0), 0) + affineParamsFloats(net);
}

/** Views of every parameter inside `buffer` (laid out layer by layer: filter, biases, scales, mean, variance). */
export function paramsInBuffer(net: Network, buffer: SharedArrayBuffer | ArrayBuffer): FrontParams {
  const floats = sharedParamsFloats(net);
  if (buffer.byteLength !== floats * 4) throw new Error(`parameter buffer has ${buffer.byteLength} bytes, the network needs ${floats * 4}`);
  let at = 0;
  const take = (n: number): Float32Array => {
    const view = new Float32Array(buffer, at * 4, n);
    at += n;
    return view;
  };
  return layerSizes(net).map((s) => {
    if (!s) return null;
    const filter = take(s.filter);
    const biases = take(s.channels);
    if (!s.bn) return { filter, biases };
    return { filter, biases, bn: { scales: take(s.channels), mean: take(s.channels), variance: take(s.channels) } };
  });
}

/** The shared buffer `params` already lie in, in paramsInBuffer's layout, or null. */
function sharedBufferOf(net: Network, params: FrontParams): SharedArrayBuffer | null {
  const first = params.find((p) => p !== null);
  const buffer = first?.filter.buffer;
  if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== sharedParamsFloats(net) * 4) return null;
  const layout = paramsInBuffer(net, buffer);
  const same = (a: Float32Array | undefined, b: Float32Array | undefined) => a?.buffer === b?.buffer && a?.byteOffset === b?.byteOffset && a?.length === b?.length;
  const placed = layout.every((view, l) => {
    const p = params[l];
    if (!view || !p) return view === p;
    return same(view.filter, p.filter) && same(view.biases, p.biases) && same(view.bn?.scales, p.bn?.scales) && same(view.bn?.mean, p.bn?.mean) && same(view.bn?.variance, p.bn?.variance);
  });
  return placed ? buffer : null;
}

/**
 * `params` in one shared buffer: themselves when they already are (no second copy of every
 * parameter), else a shared copy.
 */
export function shareParams(net: Network, params: FrontParams): { buffer: SharedArrayBuffer; params: FrontParams } {
  const existing = sharedBufferOf(net, params);
  if (existing) return { buffer: existing, params };
  const buffer = new SharedArrayBuffer(sharedParamsFloats(net) * 4);
  const shared = paramsInBuffer(net, buffer);
  shared.forEach((s, l) => {
    const p = params[l];
    if (!s) return;
    if (!p) throw new Error(`layer ${l} is convolutional but has no parameters`);
    s.filter.set(p.filter);
    s.biases.set(p.biases);
    if (s.bn) {
      if (!p.bn) throw new Error(`layer ${l} has batch_normalize=1 but no BN parameters`);
      s.bn.scales.set(p.bn.scales);
      s.bn.mean.set(p.bn.mean);
      s.bn.variance.set(p.bn.variance);
    }
  });
  return { buffer, params: shared };
}
