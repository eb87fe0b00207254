// The committed SIMD kernel modules are the assembly of their .wat sources (a stale one would run
// code nobody reviewed), and they instantiate on the wasm backend.
import t from 'tap';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../src/fused/backend.js';
import { affineKernels } from '../../src/fused/wasm-kernels/simd/affine-kernels.js';
import { filterGradientKernels } from '../../src/fused/wasm-kernels/simd/filter-gradient-kernels.js';

interface WasmBuild {
  watFiles(): string[];
  moduleFileOf(wat: string): string;
  wasmModuleSource(wat: string): Promise<string>;
}
const build = (await import('../../tools/build-wasm.mjs' as string)) as WasmBuild;

t.test('every generated module matches its .wat', async (t) => {
  const wats = build.watFiles();
  t.ok(wats.length > 0, 'there are .wat sources');
  for (const wat of wats) t.equal(readFileSync(build.moduleFileOf(wat), 'utf8'), await build.wasmModuleSource(wat), `${wat}: run node tools/build-wasm.mjs`);
});

t.test('the kernels bind to the wasm backend memory', async (t) => {
  await initBackend('wasm');
  t.ok(affineKernels(tf.backend() as BackendWasm), 'affine: instantiated (else every pass falls back to the JS loops)');
  t.ok(filterGradientKernels(tf.backend() as BackendWasm), 'filter gradient: instantiated (else small patches take im2col)');
});
