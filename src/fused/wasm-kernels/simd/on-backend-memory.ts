// Hand-written wasm modules instantiated on the tfjs wasm backend's own memory, so they read and
// write tensors in place. Null where that memory is not reachable (the threaded build does not
// export it) or the engine cannot compile the module (no wasm SIMD): callers then take their JS path.
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** The exports of the module in `base64`, bound to `backend`'s memory (one instance per memory). */
export function kernelsOnBackendMemory<T>(base64: string): (backend: BackendWasm) => T | null {
  let compiled: WebAssembly.Module | null | undefined;
  const instances = new WeakMap<WebAssembly.Memory, T>();
  return (backend) => {
    const memory = (backend.wasm as unknown as { asm?: { memory?: unknown } }).asm?.memory;
    if (!(memory instanceof WebAssembly.Memory)) return null;
    const known = instances.get(memory);
    if (known) return known;
    if (compiled === undefined) {
      const bytes = Buffer.from(base64, 'base64');
      compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
    }
    if (!compiled) return null;
    const kernels = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as T;
    instances.set(memory, kernels);
    return kernels;
  };
}
