// Bundles the CLI and the benchmarks; tfjs packages stay external (the wasm backend finds its .wasm
// files next to its own module, and tfjs-node is an optional native module).
import { build } from 'esbuild';

await build({
  entryPoints: { edge: 'src/edge.ts', 'bench-kernels': 'tools/bench-kernels.ts', 'peer-step': 'tools/peer-step.ts', 'bench-transport': 'tools/bench-transport.ts', cluster: 'tools/cluster.ts', 'make-shapes': 'tools/make-shapes.ts' },
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  packages: 'external',
  logLevel: 'warning',
});
