// Entry of a compute worker thread (bundled as dist/compute-worker.js): its own tfjs backend instance,
// the device's parameters and arenas shared with the scheduler, one task at a time.
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../fused/backend.js';
import { convWorkSeconds } from '../fused/kernel-bench.js';
import { type ComputeParams, computeParams } from '../fused/layer-ops.js';
import { wasmHeapBytes } from '../fused/wasm-kernels/heap.js';
import { mapShapes } from '../model/layers.js';
import { paramsInBuffer } from '../model/shared-params.js';
import { runTask } from './compute-tasks.js';
import type { FromWorker, ToWorker, WorkerSetup } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('compute-worker.js runs as a worker thread');
const setup = workerData as WorkerSetup;
const post = (message: FromWorker): void => port.postMessage(message);

async function main(): Promise<void> {
  const choice = await initBackend(setup.backend);
  const maps = mapShapes(setup.net);
  const params = paramsInBuffer(setup.net, setup.paramsBuffer);
  const views = (l: { arena: number; offset: number; floats: number }): Float32Array => {
    const buffer = setup.arenaBuffers[l.arena];
    if (!buffer) throw new Error(`task names arena ${l.arena}, the device has ${setup.arenaBuffers.length}`);
    return new Float32Array(buffer, l.offset * 4, l.floats);
  };
  let tensors: ComputeParams | null = null;
  port!.on('message', (message: ToWorker) => {
    if (message.type === 'params') {
      tensors?.dispose();
      tensors = computeParams(setup.net, params, setup.keepFilters);
      post({ type: 'params-loaded' });
      return;
    }
    if (message.type === 'bench') {
      try {
        post({ type: 'bench-done', id: message.id, seconds: convWorkSeconds(message.spec, message.runs) });
      } catch (error) {
        post({ type: 'bench-done', id: message.id, seconds: 0, error: (error as Error).message });
      }
      return;
    }
    const started = performance.now();
    try {
      if (!tensors) throw new Error('task before parameters were loaded');
      const ctx = { layers: setup.net.layers, maps, batch: setup.batch, params: tensors, ...(setup.bandBytes !== undefined ? { bandBytes: setup.bandBytes } : {}) };
      runTask(ctx, views, message.task, () => post({ type: 'partial', id: message.id }));
      post({ type: 'done', id: message.id, seconds: (performance.now() - started) / 1000, wasmHeapBytes: wasmHeapBytes() });
    } catch (error) {
      post({ type: 'failed', id: message.id, message: (error as Error).message });
    }
  });
  post({ type: 'ready', backend: choice });
}

main().catch((error: Error) => post({ type: 'failed', id: null, message: `worker start failed: ${error.message}` }));
