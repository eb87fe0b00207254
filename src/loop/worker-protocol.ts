// Messages between the scheduler and its compute workers (structured clone over postMessage).
import type { BackendChoice, BackendName } from '../fused/backend-name.js';
import type { ConvBenchSpec } from '../fused/kernel-bench.js';
import type { Network } from '../model/layers.js';
import type { ComputeTask } from './compute-tasks.js';

export interface WorkerSetup {
  readonly net: Network;
  readonly batch: number;
  /** Requested backend; by default the best available. */
  readonly backend?: BackendName;
  readonly paramsBuffer: SharedArrayBuffer;
  readonly arenaBuffers: readonly SharedArrayBuffer[];
  /** Keep a run's filters across tasks (keepsFiltersAcrossTasks). */
  readonly keepFilters: boolean;
  /** Heap bytes a band may keep live (tests); by default tiles/bands.ts's. */
  readonly bandBytes?: number;
}

export type ToWorker =
  | { readonly type: 'params' }
  | { readonly type: 'task'; readonly id: number; readonly task: ComputeTask }
  /** `edge profile` only, with no task in flight: fixed conv work, timed on the worker (kernel-bench.ts convWorkSeconds). */
  | { readonly type: 'bench'; readonly id: number; readonly spec: ConvBenchSpec; readonly runs: number };

export type FromWorker =
  | { readonly type: 'ready'; readonly backend: BackendChoice }
  | { readonly type: 'params-loaded' }
  | { readonly type: 'partial'; readonly id: number }
  | { readonly type: 'done'; readonly id: number; readonly seconds: number; readonly wasmHeapBytes: number }
  | { readonly type: 'failed'; readonly id: number | null; readonly message: string }
  | { readonly type: 'bench-done'; readonly id: number; readonly seconds: number; readonly error?: string };
