// Several float arrays as one (a reduction bucket, a state file) and back, in the order given.

export function concatFloats(parts: readonly Float32Array[]): Float32Array {
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/** Copies consecutive pieces of `all` into `parts`; `what` says what a size mismatch means. */
export function splitFloats(all: Float32Array, parts: readonly Float32Array[], what: string): void {
  const needed = parts.reduce((n, p) => n + p.length, 0);
  if (needed !== all.length) throw new Error(`${what}: ${all.length} floats where ${needed} are expected`);
  let at = 0;
  for (const p of parts) {
    p.set(all.subarray(at, at + p.length));
    at += p.length;
  }
}
