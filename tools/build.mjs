// Bundles the CLI and the benchmarks; tfjs packages stay external (the wasm backend finds its .wasm
// files next to its own module, and tfjs-node is an optional native module).
// dist/ is emptied first: stale chunks would otherwise pile up.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist', { recursive: true, force: true });

await build({
  entryPoints: {
    edge: 'src/edge.ts', 'compute-worker': 'src/loop/compute-worker.ts', cluster: 'tools/cluster.ts', emulator: 'tools/emulator.ts', 'make-shapes': 'tools/make-shapes.ts',
    'region-anchors': 'tools/region-anchors.ts', 'train-detector': 'tools/train-detector.ts',
    'bench-kernels': 'tools/bench-kernels.ts', 'bench-transport': 'tools/bench-transport.ts', 'bench-runtime': 'tools/bench-runtime.ts', 'bench-training': 'tools/bench-training.ts', 'bench-cluster': 'tools/bench-cluster.ts', 'plain-tfjs-train': 'tools/plain-tfjs-train.ts', 'peer-step': 'tools/peer-step.ts',
  },
  outdir: 'dist',
  bundle: true,
  // Code behind a dynamic import() stays in its own chunk, so a scheduler thread that never computes
  // does not load tfjs (about 40 MB of RSS per device).
  splitting: true,
  // Chunks sit next to the entries: code in a chunk finds dist/compute-worker.js as ./compute-worker.js.
  chunkNames: '[name]-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  packages: 'external',
  logLevel: 'warning',
});
