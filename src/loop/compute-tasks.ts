// Compute work the scheduler hands out: one tile through one forward group or backward window, with
// every buffer named by its arena location so a worker thread can run it on the shared arenas.
import type { FusedRegions } from '../tiles/fused-regions.js';
import type { BufferLocation } from '../memory/arena.js';
import { type ComputeContext, backwardTile, forwardTile } from '../fused/tile-compute.js';

export interface ForwardTask {
  readonly kind: 'forward';
  readonly regions: FusedRegions;
  readonly input: BufferLocation;
  /** By layer: every layer but the last (the next layer's input), and the last when backward reuses this pass. */
  readonly stash: Readonly<Record<number, BufferLocation>>;
  /** Null for a recompute pass, whose output nobody reads. */
  readonly output: BufferLocation | null;
}

export interface BackwardTask {
  readonly kind: 'backward';
  readonly regions: FusedRegions;
  readonly fromLayer: number;
  readonly input: BufferLocation;
  readonly stash: Readonly<Record<number, BufferLocation>>;
  /** Layers whose stash buffer holds nothing yet: backward recomputes it from the layer's input. */
  readonly recompute: readonly number[];
  readonly outputGradient: BufferLocation;
  readonly partial: BufferLocation | null;
  /** By map m, first layer < m <= last layer: the gradient between the window's layers. */
  readonly gradients: Readonly<Record<number, BufferLocation>>;
  readonly weights: Readonly<Record<number, BufferLocation>>;
  /** By conv layer: room for the float64 sums of its filter gradient (layers may share one). */
  readonly filterSums: Readonly<Record<number, BufferLocation>>;
}

export type ComputeTask = ForwardTask | BackwardTask;

type Views = (location: BufferLocation) => Float32Array;

/** `what` names the buffer and its index, e.g. "stash buffer for layer". */
function pick(table: Readonly<Record<number, BufferLocation>>, index: number, what: string): BufferLocation {
  const location = table[index];
  if (!location) throw new Error(`task has no ${what} ${index}`);
  return location;
}

/** An arena buffer of 2n floats as n float64s (arena buffers start 64-byte aligned). */
const float64View = (floats: Float32Array): Float64Array => new Float64Array(floats.buffer, floats.byteOffset, floats.length >> 1);

/** Runs a task on this thread. */
export function runTask(ctx: ComputeContext, views: Views, task: ComputeTask, onPartial: () => void): void {
  ctx.params.keepOnly(task.regions.firstLayer, task.regions.lastLayer);
  if (task.kind === 'forward') {
    const stash = task.stash;
    forwardTile(ctx, task.regions, {
      input: views(task.input),
      stash: (l) => (stash[l] ? views(stash[l]) : undefined),
      ...(task.output ? { output: views(task.output) } : {}),
    });
    return;
  }
  backwardTile(ctx, task.regions, task.fromLayer, {
    input: views(task.input),
    stash: (l) => views(pick(task.stash, l, 'stash buffer for layer')),
    recompute: new Set(task.recompute),
    outputGradient: views(task.outputGradient),
    ...(task.partial ? { partial: views(task.partial) } : {}),
    gradient: (m) => views(pick(task.gradients, m, 'gradient buffer for map')),
    weightGradient: (l) => views(pick(task.weights, l, 'weight-gradient buffer for layer')),
    filterSums: (l) => float64View(views(pick(task.filterSums, l, 'filter-sums buffer for layer'))),
  }, onPartial);
}
