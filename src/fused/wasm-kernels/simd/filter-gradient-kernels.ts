// The SIMD filter gradient of small patches (filter-gradient.wat) on the tfjs wasm backend's memory;
// null where it is not reachable or the engine has no wasm SIMD: callers then take im2col and matmul.
import { WASM_BASE64 } from './filter-gradient-module.js';
import { kernelsOnBackendMemory } from './on-backend-memory.js';

export interface FilterGradientKernels {
  /** Byte offsets and sizes as filter-gradient.wat describes; cout a multiple of 16, tapCount even. */
  filterGradient(
    x: number, dy: number, sums: number, taps: number, tapCount: number, batch: number, outHeight: number, outWidth: number, cout: number,
    xRowBytes: number, xRowsPerOutRow: number, xImageBytes: number, xStepBytes: number,
  ): void;
}

/** The kernel bound to `backend`'s memory (one instance per memory). */
export const filterGradientKernels = kernelsOnBackendMemory<FilterGradientKernels>(WASM_BASE64);
