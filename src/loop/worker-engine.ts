// Compute on worker threads: each has its own tfjs backend instance (the wasm backend is
// single-threaded in Node, so threads are how a device uses more cores) and shares the device's
// parameter and arena buffers. The main thread only queues tasks and keeps the sockets serviced.
import { Worker } from 'node:worker_threads';
import type { BackendChoice, BackendName } from '../fused/backend-name.js';
import type { ConvBenchSpec } from '../fused/kernel-bench.js';
import type { Network } from '../model/layers.js';
import type { ComputeEngine } from './compute-engine.js';
import type { ComputeTask } from './compute-tasks.js';
import type { FromWorker, ToWorker, WorkerSetup } from './worker-protocol.js';

interface Pending {
  readonly task: ComputeTask;
  readonly onPartial: () => void;
  resolve(): void;
  reject(error: Error): void;
}

interface Thread {
  readonly worker: Worker;
  readonly index: number;
  current: { id: number; pending: Pending } | null;
  busySeconds: number;
  /** The worker's wasm heap as last reported (it only grows). */
  heapBytes: number;
}

export interface WorkerEngineOptions {
  readonly threads: number;
  readonly net: Network;
  readonly batch: number;
  /** By default the best available. */
  readonly backend?: BackendName;
  readonly paramsBuffer: SharedArrayBuffer;
  readonly arenaBuffers: readonly SharedArrayBuffer[];
  /** The bundled worker entry; by default dist/compute-worker.js next to the running bundle. */
  readonly script?: URL;
  /** Keep a run's filters across tasks (keepsFiltersAcrossTasks). */
  readonly keepFilters: boolean;
  readonly bandBytes?: number;
}

export class WorkerEngine implements ComputeEngine {
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private failure: Error | null = null;
  private closing = false;
  private readonly paramsLoaded = new Map<Thread, () => void>();
  private readonly benches = new Map<number, { resolve(seconds: number): void; reject(error: Error): void }>();

  /** What the workers' backend initialisation chose (the same on every worker). */
  backend: BackendChoice = { name: 'cpu', notes: [] };

  private constructor(private readonly pool: Thread[]) {}

  get threads(): number {
    return this.pool.length;
  }

  static async start(options: WorkerEngineOptions): Promise<WorkerEngine> {
    if (!Number.isInteger(options.threads) || options.threads < 1) throw new Error(`compute workers must be a positive integer, got ${options.threads}`);
    const script = options.script ?? new URL('./compute-worker.js', import.meta.url);
    const setup: WorkerSetup = {
      net: options.net, batch: options.batch, ...(options.backend ? { backend: options.backend } : {}),
      paramsBuffer: options.paramsBuffer, arenaBuffers: options.arenaBuffers, keepFilters: options.keepFilters,
      ...(options.bandBytes !== undefined ? { bandBytes: options.bandBytes } : {}),
    };
    const pool = Array.from({ length: options.threads }, (_, index): Thread => ({
      worker: new Worker(script, { workerData: setup }), index, current: null, busySeconds: 0, heapBytes: 0,
    }));
    const engine = new WorkerEngine(pool);
    await Promise.all(pool.map((thread) => engine.attach(thread)));
    return engine;
  }

  /** Wires a thread's messages and resolves once it is ready. */
  private attach(thread: Thread): Promise<void> {
    return new Promise((ready, failed) => {
      thread.worker.on('message', (message: FromWorker) => {
        if (message.type === 'ready') {
          this.backend = message.backend;
          ready();
        }
        else if (message.type === 'partial') thread.current?.pending.onPartial();
        else if (message.type === 'done' || (message.type === 'failed' && message.id !== null)) {
          const current = thread.current;
          thread.current = null;
          if (message.type === 'done') {
            thread.busySeconds += message.seconds;
            thread.heapBytes = message.wasmHeapBytes;
            current?.pending.resolve();
          } else current?.pending.reject(new Error(`compute worker ${thread.index}: ${message.message}`));
          this.dispatch();
        } else if (message.type === 'failed') {
          this.fail(new Error(`compute worker ${thread.index}: ${message.message}`));
          failed(this.failure!);
        } else if (message.type === 'params-loaded') {
          this.paramsLoaded.get(thread)?.();
          this.paramsLoaded.delete(thread);
        } else if (message.type === 'bench-done') {
          const bench = this.benches.get(message.id);
          this.benches.delete(message.id);
          if (message.error !== undefined) bench?.reject(new Error(`compute worker ${thread.index}: ${message.error}`));
          else bench?.resolve(message.seconds);
        }
      });
      const died = (error: Error): void => {
        this.fail(new Error(`compute worker ${thread.index} died: ${error.message}`));
        failed(this.failure!);
      };
      thread.worker.on('error', died);
      thread.worker.on('exit', (code) => {
        if (!this.closing) died(new Error(`exit code ${code}`));
      });
    });
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const thread of this.pool) {
      thread.current?.pending.reject(error);
      thread.current = null;
    }
    for (const pending of this.queue.splice(0)) pending.reject(error);
    for (const loaded of this.paramsLoaded.values()) loaded(); // loadParams() then throws the failure
    this.paramsLoaded.clear();
    for (const bench of this.benches.values()) bench.reject(error);
    this.benches.clear();
  }

  private dispatch(): void {
    for (const thread of this.pool) {
      if (thread.current || this.queue.length === 0) continue;
      const pending = this.queue.shift()!;
      const id = this.nextId++;
      thread.current = { id, pending };
      thread.worker.postMessage({ type: 'task', id, task: pending.task } satisfies ToWorker);
    }
  }

  /** Call between steps only (no task in flight): every worker rebuilds its parameter tensors. */
  async loadParams(): Promise<void> {
    if (this.failure) throw this.failure;
    await Promise.all(this.pool.map((thread) => new Promise<void>((resolve) => {
      this.paramsLoaded.set(thread, resolve);
      thread.worker.postMessage({ type: 'params' } satisfies ToWorker);
    })));
    if (this.failure) throw this.failure;
  }

  run(task: ComputeTask, onPartial: () => void = () => undefined): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ task, onPartial, resolve, reject });
      this.dispatch();
    });
  }

  /**
   * `edge profile` only, between steps (no task in flight): the same fixed conv work on the first
   * `threads` workers at once; the seconds each took (kernel-bench.ts convWorkSeconds).
   */
  benchmarkConv(spec: ConvBenchSpec, runs: number, threads: number): Promise<number[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (!Number.isInteger(threads) || threads < 1 || threads > this.pool.length) throw new Error(`benchmark threads must be 1..${this.pool.length}, got ${threads}`);
    return Promise.all(this.pool.slice(0, threads).map((thread) => new Promise<number>((resolve, reject) => {
      const id = this.nextId++;
      this.benches.set(id, { resolve, reject });
      thread.worker.postMessage({ type: 'bench', id, spec, runs } satisfies ToWorker);
    })));
  }

  takeBusySeconds(): number[] {
    return this.pool.map((thread) => {
      const busy = thread.busySeconds;
      thread.busySeconds = 0;
      return busy;
    });
  }

  backendHeapBytes(): number {
    return this.pool.reduce((sum, thread) => sum + thread.heapBytes, 0);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.pool.map((thread) => thread.worker.terminate()));
  }
}
