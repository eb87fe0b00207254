// Moving bands of rows between maps in arena buffers (plain or shared Float32Arrays) and the backend.
// On wasm a band is gathered straight into the heap and read straight from it, so neither direction
// allocates in JS; other backends get (and give) copies.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { Span } from '../tiles/region.js';
import { allocate, heapFloats, heapOffset } from './wasm-kernels/heap.js';

const onWasm = (): boolean => tf.getBackend() === 'wasm';

/** An NHWC map [batch, height, width, channels] held in a Float32Array (an arena view). */
export interface MapView {
  readonly data: Float32Array;
  readonly shape: readonly [number, number, number, number];
}

/** A tensor's values: read in place from the wasm heap (valid until the next allocation), else copied out. */
function valuesOf(tensor: tf.Tensor): { values: Float32Array; at: number } {
  if (!onWasm()) return { values: tensor.dataSync() as Float32Array, at: 0 };
  const backend = tf.backend() as BackendWasm;
  return { values: heapFloats(backend), at: heapOffset(backend, tensor) };
}

/** Rows [rows.start, rows.end) of the map as a tensor [batch, rows, width, channels]. */
export function tensorFromRows(map: MapView, rows: Span): tf.Tensor4D {
  const [batch, height, width, channels] = map.shape;
  const shape = [batch, rows.end - rows.start, width, channels];
  const image = height * width * channels;
  const band = shape[1]! * width * channels;
  const from = rows.start * width * channels;
  const gather = (values: Float32Array, at: number): void => {
    for (let n = 0; n < batch; n++) values.set(map.data.subarray(n * image + from, n * image + from + band), at + n * band);
  };
  if (!onWasm()) {
    const values = new Float32Array(batch * band);
    gather(values, 0);
    return tf.tensor4d(values, shape as [number, number, number, number]);
  }
  // Straight into the heap: no JS copy of the band.
  const backend = tf.backend() as BackendWasm;
  const info = allocate(backend, shape);
  gather(heapFloats(backend), heapOffset(backend, info));
  return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor4D;
}

/** Copies a tensor [batch, rows, width, channels] into the map's rows from `start` on. */
export function writeRows(tensor: tf.Tensor4D, map: MapView, start: number): void {
  const [batch, height, width, channels] = map.shape;
  const band = tensor.shape[1] * width * channels;
  const { values, at } = valuesOf(tensor);
  for (let n = 0; n < batch; n++) {
    const from = at + n * band;
    map.data.set(values.subarray(from, from + band), (n * height + start) * width * channels);
  }
}

/**
 * Adds a tensor [batch, rows, w, channels] into the map with its first element at map row `top`,
 * column `left`; rows and columns that fall outside the map are dropped (they are padding).
 */
export function addRows(tensor: tf.Tensor4D, map: MapView, top: number, left: number): void {
  const [batch, height, width, channels] = map.shape;
  const [, rows, tensorWidth] = tensor.shape;
  const { values, at } = valuesOf(tensor);
  const colFrom = Math.max(0, -left);
  const run = (Math.min(tensorWidth, width - left) - colFrom) * channels;
  for (let n = 0; n < batch; n++) {
    for (let r = Math.max(0, -top); r < Math.min(rows, height - top); r++) {
      let src = at + ((n * rows + r) * tensorWidth + colFrom) * channels;
      let dst = ((n * height + top + r) * width + left + colFrom) * channels;
      for (const end = dst + run; dst < end; dst++, src++) map.data[dst] = map.data[dst]! + values[src]!;
    }
  }
}
