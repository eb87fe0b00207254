// The SIMD batch-norm/activation kernels (affine.wat) on the tfjs wasm backend's memory; null where
// it is not reachable or the engine has no wasm SIMD: callers then run the JS loops.
import { WASM_BASE64 } from './affine-module.js';
import { kernelsOnBackendMemory } from './on-backend-memory.js';

export interface AffineKernels {
  /** Byte offsets; `channels` a multiple of 4. */
  affineForward(x: number, out: number, pixels: number, channels: number, a: number, b: number, negative: number): void;
  affineBackward(x: number, dy: number, dConv: number, pixels: number, channels: number, a: number, b: number, negative: number, batchNorm: number, sums: number): void;
}

/** The kernels bound to `backend`'s memory (one instance per memory). */
export const affineKernels = kernelsOnBackendMemory<AffineKernels>(WASM_BASE64);
