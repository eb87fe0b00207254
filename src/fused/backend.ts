// Chooses the tfjs backend: tensorflow (tfjs-node, native) > wasm (XNNPACK, ships in the npm package)
// > cpu (pure JS reference). The choice is printed and reported.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from './wasm-kernels/register.js';
import { BACKENDS, type BackendChoice, type BackendName } from './backend-name.js';

async function loadTensorflow(): Promise<void> {
  // Optional dependency: its install downloads libtensorflow, which fails on offline machines.
  const moduleName = '@tensorflow/tfjs-node';
  await import(moduleName);
}

async function activate(name: BackendName): Promise<void> {
  if (name === 'tensorflow') await loadTensorflow();
  // The reference backend costs memory; it loads only when chosen.
  if (name === 'cpu') await import('@tensorflow/tfjs-backend-cpu');
  if (name === 'wasm') registerWasmTrainingKernels();
  if (!(await tf.setBackend(name))) throw new Error(`tfjs could not start the ${name} backend`);
  await tf.ready();
}

export async function initBackend(requested?: BackendName): Promise<BackendChoice> {
  tf.enableProdMode();
  if (requested) {
    await activate(requested);
    return { name: requested, notes: [] };
  }
  const notes: string[] = [];
  for (const name of BACKENDS) {
    try {
      await activate(name);
      return { name, notes };
    } catch (error) {
      notes.push(`${name} unavailable: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(`no tfjs backend could start: ${notes.join('; ')}`);
}

/** The active backend when it satisfies the request (none, or the same), else initBackend(requested). */
export async function ensureBackend(requested?: BackendName): Promise<BackendChoice> {
  const active = tf.getBackend() as BackendName | null;
  if (active && (requested === undefined || requested === active)) return { name: active, notes: [] };
  return initBackend(requested);
}
