// Moving tensor data between arena buffers (plain or shared Float32Arrays) and the backend. The wasm
// backend copies on creation and is read straight from its heap, so neither direction allocates in
// JS; other backends may keep a reference to the values they are given, so they get a copy.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapFloats, heapOffset } from './wasm-kernels/heap.js';

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
