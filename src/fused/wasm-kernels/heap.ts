// Access to tensors that live in the tfjs wasm heap. A view is valid only until the next allocation
// (the heap may grow and move), so take views after allocating and never keep them.
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';

/** Float offset of a tensor's first element in the wasm heap. */
export function heapOffset(backend: BackendWasm, tensor: TensorInfo): number {
  const data = backend.dataIdMap.get(tensor.dataId);
  if (!data || data.memoryOffset == null) throw new Error('tensor is not resident in the wasm heap');
  return data.memoryOffset / 4;
}

/** The whole heap as floats: copyWithin/fill between tensors then cost no allocation. */
export function heapFloats(backend: BackendWasm): Float32Array {
  return new Float32Array((backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer);
}

export function allocate(backend: BackendWasm, shape: number[]): TensorInfo {
  return backend.makeOutput(shape, 'float32');
}

export function release(backend: BackendWasm, ...tensors: TensorInfo[]): void {
  for (const t of tensors) backend.disposeData(t.dataId);
}

/** Size of this thread's wasm heap (its high-water mark: it never shrinks); 0 off the wasm backend. */
export function wasmHeapBytes(): number {
  if (tf.getBackend() !== 'wasm') return 0;
  return ((tf.backend() as BackendWasm).wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.length;
}
