// Where a device's compute runs. The scheduler hands tasks to an engine and keeps the sockets; the
// inline engine runs them on the calling thread (tests, verification, memory-tight devices), the
// worker engine on worker threads that share the arenas (src/loop/worker-engine.ts).
import { type ComputeParams, computeParams } from '../fused/layer-ops.js';
import { type MapShape, type Network, mapShapes } from '../model/layers.js';
import type { FrontParams } from '../model/weights.js';
import type { BufferLocation } from '../memory/arena.js';
import { wasmHeapBytes } from '../fused/wasm-kernels/heap.js';
import { type ComputeTask, runTask } from './compute-tasks.js';

export interface ComputeEngine {
  /** Compute threads besides the caller's; 0 when tasks run inline. */
  readonly threads: number;
  /** Rebuilds the resident parameter tensors (biases, batch norm) from the (updated) parameter buffers. */
  loadParams(): Promise<void>;
  /** `onPartial` runs once a backward task's partial input gradient is in its buffer. */
  run(task: ComputeTask, onPartial?: () => void): Promise<void>;
  /** Seconds each compute thread spent in tasks since the previous call. */
  takeBusySeconds(): number[];
  /** The compute threads' backend heaps (wasm: their high-water marks), summed; 0 off wasm. */
  backendHeapBytes(): number;
  close(): Promise<void>;
}

export class InlineEngine implements ComputeEngine {
  readonly threads = 0;
  private tensors: ComputeParams | null = null;
  private busy = 0;
  private readonly maps: readonly MapShape[];

  constructor(
    private readonly net: Network,
    private readonly batch: number,
    private readonly params: FrontParams,
    private readonly views: (location: BufferLocation) => Float32Array,
    /** Keep a run's filters across tasks (keepsFiltersAcrossTasks). */
    private readonly keepFilters: boolean,
    /** Heap bytes a band may keep live (tests); by default tiles/bands.ts's. */
    private readonly bandBytes?: number,
  ) {
    this.maps = mapShapes(net);
  }

  async loadParams(): Promise<void> {
    this.tensors?.dispose();
    this.tensors = computeParams(this.net, this.params, this.keepFilters);
  }

  async run(task: ComputeTask, onPartial: () => void = () => undefined): Promise<void> {
    if (!this.tensors) throw new Error('compute engine has no parameters: call loadParams() first');
    const started = performance.now();
    try {
      const ctx = { layers: this.net.layers, maps: this.maps, batch: this.batch, params: this.tensors, ...(this.bandBytes !== undefined ? { bandBytes: this.bandBytes } : {}) };
      runTask(ctx, this.views, task, onPartial);
    } finally {
      this.busy += (performance.now() - started) / 1000;
    }
  }

  takeBusySeconds(): number[] {
    const busy = this.busy;
    this.busy = 0;
    return [busy];
  }

  backendHeapBytes(): number {
    return wasmHeapBytes();
  }

  async close(): Promise<void> {
    this.tensors?.dispose();
    this.tensors = null;
  }
}
