// The same tile code on the other backends: cpu (always here; it takes the paths every non-wasm
// backend takes: bands copied through JS arrays, batch norm and activation as separate ops, the
// backend's own gradient kernels) and tensorflow (tfjs-node, when it is installed), against tf.grad
// of the unpartitioned front on the same backend.
import t, { type Test } from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/fused/backend.js';
import type { BackendName } from '../../src/fused/backend-name.js';
import { verify } from '../../src/verify/verify.js';
import { randomConfig } from '../helpers/random-net.js';

const TOLERANCE = 1e-4;

async function tensorflowInstalled(): Promise<boolean> {
  try {
    const name = '@tensorflow/tfjs-node';
    await import(name);
    return true;
  } catch {
    return false;
  }
}

async function checkBackend(t: Test, backend: BackendName, seeds: number[]): Promise<void> {
  const choice = await initBackend(backend);
  t.equal(tf.getBackend(), backend, `the ${choice.name} backend is active`);
  for (const seed of seeds) {
    const config = randomConfig(seed);
    // Whole layers, and every layer in one-row bands.
    for (const bandBytes of [undefined, 1]) {
      const report = await verify({ ...config, seed, tolerance: TOLERANCE, backend, ...(bandBytes !== undefined ? { bandBytes } : {}) });
      t.ok(report.ok, `${backend} #${seed} ${config.describe}${bandBytes ? ', one-row bands' : ''}: ${report.maxRelError.toExponential(2)} (${report.worst})`);
    }
  }
}

t.test('cpu backend', (t) => checkBackend(t, 'cpu', Array.from({ length: 12 }, (_, i) => 300 + i)));

t.test('tensorflow backend (tfjs-node)', { skip: !(await tensorflowInstalled()) && '@tensorflow/tfjs-node is not installed here (its install downloads libtensorflow)' },
  (t) => checkBackend(t, 'tensorflow', Array.from({ length: 20 }, (_, i) => 400 + i)));
