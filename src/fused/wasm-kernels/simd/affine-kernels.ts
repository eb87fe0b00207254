// The SIMD batch-norm/activation kernels (affine.wat), instantiated on the tfjs wasm backend's own
// memory so they read and write tensors in place. Null where the backend's memory is not reachable
// or the engine has no wasm SIMD: callers then run the JS loops.
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { WASM_BASE64 } from './affine-module.js';

export interface AffineKernels {
  /** Byte offsets; `channels` a multiple of 4. */
  affineForward(x: number, out: number, pixels: number, channels: number, a: number, b: number, negative: number): void;
  affineBackward(x: number, dy: number, dConv: number, pixels: number, channels: number, a: number, b: number, negative: number, batchNorm: number, sums: number): void;
}

let compiled: WebAssembly.Module | null | undefined;
const instances = new WeakMap<WebAssembly.Memory, AffineKernels>();

function module(): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = Buffer.from(WASM_BASE64, 'base64');
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

/** The kernels bound to `backend`'s memory (one instance per memory). */
export function affineKernels(backend: BackendWasm): AffineKernels | null {
  const memory = (backend.wasm as unknown as { asm?: { memory?: unknown } }).asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  const known = instances.get(memory);
  if (known) return known;
  const wasm = module();
  if (!wasm) return null;
  const kernels = new WebAssembly.Instance(wasm, { env: { memory } }).exports as unknown as AffineKernels;
  instances.set(memory, kernels);
  return kernels;
}
