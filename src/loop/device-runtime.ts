// Sets up what a device keeps across steps: parameters in shared memory, the arenas of its memory
// plan, and the compute engine (worker threads, or inline when `threads` is 0).
import type { BackendChoice, BackendName } from '../fused/backend-name.js';
import { DeviceArenas } from '../memory/arena.js';
import { planDeviceArenas } from '../memory/arena-plan.js';
import { keepsFiltersAcrossTasks } from '../memory/estimate.js';
import { shareParams } from '../model/shared-params.js';
import type { FrontParams } from '../model/weights.js';
import { type TilePlan, tilesOfDevice } from '../tiles/plan.js';
import type { ComputeEngine } from './compute-engine.js';
import type { DeviceRuntime } from './device-step.js';
import { WorkerEngine } from './worker-engine.js';

export interface RuntimeRequest {
  readonly plan: TilePlan;
  readonly rank: number;
  readonly params: FrontParams;
  /** Compute worker threads; 0 runs compute on the calling thread. */
  readonly threads: number;
  /** The compute backend; by default the best available (tensorflow > wasm > cpu). */
  readonly backend?: BackendName;
  readonly overlap?: boolean;
  readonly wantInputGradient?: boolean;
  readonly workerScript?: URL;
  /** Heap bytes a band of a layer may keep live; tests lower it so small maps are computed in bands. */
  readonly bandBytes?: number;
}

export interface DeviceRuntimeWithParams extends DeviceRuntime {
  /** The backend the compute threads run, and why better ones were skipped. */
  readonly backend: BackendChoice;
  /** The parameters every compute thread reads: update these in place. */
  readonly params: FrontParams;
}

export async function createDeviceRuntime(request: RuntimeRequest): Promise<DeviceRuntimeWithParams> {
  const { plan, rank } = request;
  const shared = shareParams(plan.net, request.params);
  const arenas = new DeviceArenas(planDeviceArenas(plan, rank, { wantInputGradient: request.wantInputGradient ?? false }));
  const keepFilters = keepsFiltersAcrossTasks(tilesOfDevice(plan, rank).length, request.threads);
  let engine: ComputeEngine;
  let backend: BackendChoice;
  if (request.threads === 0) {
    // Loaded only here: a scheduler with compute workers never loads tfjs (about 40 MB of RSS).
    const [{ ensureBackend }, { InlineEngine }] = await Promise.all([import('../fused/backend.js'), import('./compute-engine.js')]);
    backend = await ensureBackend(request.backend);
    engine = new InlineEngine(plan.net, plan.batch, shared.params, (l) => arenas.viewAt(l), keepFilters, request.bandBytes);
  } else {
    const workers = await WorkerEngine.start({
      threads: request.threads, net: plan.net, batch: plan.batch, ...(request.backend ? { backend: request.backend } : {}),
      paramsBuffer: shared.buffer, arenaBuffers: arenas.buffers, keepFilters,
      ...(request.workerScript ? { script: request.workerScript } : {}),
      ...(request.bandBytes !== undefined ? { bandBytes: request.bandBytes } : {}),
    });
    engine = workers;
    backend = workers.backend;
  }
  return { plan, rank, arenas, engine, backend, overlap: request.overlap ?? true, params: shared.params };
}
