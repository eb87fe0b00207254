// Moving tensor data between arena buffers (plain or shared Float32Arrays) and the backend. The wasm
// backend copies on creation and is read straight from its heap, so neither direction allocates in
// JS; other backends may keep a reference to the values they are given, so they get a copy.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { Span } from '../tiles/region.js';
import { allocate, heapFloats, heapOffset } from './wasm-kernels/heap.js';

const onWasm = (): boolean => tf.getBackend() === 'wasm';

export function tensorFromView(view: Float32Array, shape: number[]): tf.Tensor4D {
  const size = shape.reduce((a, b) => a * b, 1);
  if (view.length !== size) throw new Error(`buffer of ${view.length} floats cannot hold a tensor of shape [${shape.join(', ')}]`);
  return tf.tensor4d(onWasm() ? view : view.slice(), shape as [number, number, number, number]);
}

/** Copies the tensor's values into `target` (of exactly its size), at `offset`. */
export function writeTensor(tensor: tf.Tensor, target: Float32Array, offset = 0): void {
  if (offset + tensor.size > target.length) throw new Error(`tensor of ${tensor.size} floats does not fit ${target.length - offset} floats of its buffer`);
  if (onWasm()) {
    const backend = tf.backend() as BackendWasm;
    const at = heapOffset(backend, tensor);
    target.set(heapFloats(backend).subarray(at, at + tensor.size), offset);
  } else target.set(tensor.dataSync() as Float32Array, offset);
}

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

/** Adds the tensor's values into `target` from `offset` on. */
export function addTensor(tensor: tf.Tensor, target: Float32Array | Float64Array, offset = 0): void {
  if (offset + tensor.size > target.length) throw new Error(`tensor of ${tensor.size} floats does not fit ${target.length - offset} floats of its buffer`);
  const { values, at } = valuesOf(tensor);
  for (let i = 0; i < tensor.size; i++) target[offset + i] = target[offset + i]! + values[at + i]!;
}
