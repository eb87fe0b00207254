// Compute time of tile tasks under a profile, from the regions each layer actually reads and writes:
// redundant compute on overlaps is counted because the regions include it. A task is what the
// runtime hands a worker: one tile through one forward group, or one tile through one backward
// window (recompute forward when the window does not reuse a forward stash, then backward).
import { type FrontLayer, type MapShape, type Network, forwardFlops } from '../model/layers.js';
import type { FusedRegions } from '../tiles/fused-regions.js';
import { type Region, regionArea, regionHeight, regionWidth } from '../tiles/region.js';
import { type DeviceProfile, convRule } from './profile.js';
import { recomputesStash } from '../tiles/plan.js';

export interface CostContext {
  readonly net: Network;
  readonly maps: readonly MapShape[];
  readonly batch: number;
  readonly profile: DeviceProfile;
  /** The plan's (tiles/plan.ts recomputesStash). */
  readonly recomputeStashFlops: number;
}

const GIGA = 1e9;

/** FLOPs of layer `l` producing `out` (the batch included); maxpool counts compares. */
export function layerFlops(ctx: CostContext, l: number, out: Region): number {
  const layer = ctx.net.layers[l]!;
  const shape = (map: number, r: Region): MapShape => ({ height: regionHeight(r), width: regionWidth(r), channels: ctx.maps[map]!.channels });
  return ctx.batch * forwardFlops(layer, shape(l, out), shape(l + 1, out));
}

/**
 * Elementwise passes of one layer's forward: the padded input copy, then (conv) bias/BN/activation
 * and the stash or output copy, (maxpool) the output copy. Backward is counted as twice this.
 */
function forwardElementwise(ctx: CostContext, layer: FrontLayer, l: number, read: Region, out: Region): number {
  const input = ctx.batch * regionArea(read) * ctx.maps[l]!.channels;
  const output = ctx.batch * regionArea(out) * ctx.maps[l + 1]!.channels;
  return input + (layer.kind === 'conv' ? 2 : 1) * output;
}

/** Seconds of layer `l` forward in one tile task that reads `read` (padding included) and writes `out`. */
export function layerForwardSeconds(ctx: CostContext, l: number, read: Region, out: Region): number {
  const layer = ctx.net.layers[l]!;
  const { compute } = ctx.profile;
  const gflops = layer.kind === 'conv' ? convRule(ctx.profile, layer, ctx.maps[l]!.channels).forwardGflops : compute.maxpoolForwardGflops;
  return layerFlops(ctx, l, out) / (gflops * GIGA)
    + forwardElementwise(ctx, layer, l, read, out) / (compute.elementwiseGflops * GIGA)
    + compute.layerOverheadMs / 1000;
}

export interface BackwardSeconds {
  readonly total: number;
  /** The filter gradient part, which the runtime computes after the partial gradient has left. */
  readonly filterGradient: number;
}

/**
 * Seconds of layer `l` backward over the same regions as its forward: the input gradient (skipped
 * when nothing wants it: the network's first layer) and the filter gradient each cost the layer's
 * forward FLOPs; maxpool backward costs its forward compares at the maxpool-backward rate.
 */
export function layerBackwardSeconds(ctx: CostContext, l: number, read: Region, out: Region, wantInputGradient: boolean): BackwardSeconds {
  const layer = ctx.net.layers[l]!;
  const { compute } = ctx.profile;
  const flops = layerFlops(ctx, l, out);
  const fixed = (2 * forwardElementwise(ctx, layer, l, read, out)) / (compute.elementwiseGflops * GIGA) + compute.layerOverheadMs / 1000;
  if (layer.kind === 'maxpool') return { total: flops / (compute.maxpoolBackwardGflops * GIGA) + fixed, filterGradient: 0 };
  const rule = convRule(ctx.profile, layer, ctx.maps[l]!.channels);
  const input = wantInputGradient ? flops / (rule.inputGradientGflops * GIGA) : 0;
  const filterGradient = flops / (rule.filterGradientGflops * GIGA);
  return { total: input + filterGradient + fixed, filterGradient };
}

/** One tile through a fused run's forward, over `regions` (firstLayer..lastLayer). */
export function forwardTaskSeconds(ctx: CostContext, regions: FusedRegions): number {
  return ctx.profile.compute.taskOverheadMs / 1000 + forwardLayersSeconds(ctx, regions);
}

/** A reusing window still recomputes its cheap stashes (tiles/plan.ts recomputesStash). */
function cheapStashesSeconds(ctx: CostContext, regions: FusedRegions): number {
  let seconds = 0;
  for (let l = regions.firstLayer; l <= regions.lastLayer; l++) {
    const i = l - regions.firstLayer;
    if (recomputesStash(ctx, l)) seconds += layerForwardSeconds(ctx, l, regions.read[i]!, regions.held[i + 1]!);
  }
  return seconds;
}

function forwardLayersSeconds(ctx: CostContext, regions: FusedRegions): number {
  let seconds = 0;
  for (let l = regions.firstLayer; l <= regions.lastLayer; l++) {
    const i = l - regions.firstLayer;
    seconds += layerForwardSeconds(ctx, l, regions.read[i]!, regions.held[i + 1]!);
  }
  return seconds;
}

export interface TaskSeconds {
  readonly total: number;
  /** Seconds from the partial gradient leaving to the end of the task (the first layer's filter gradient). */
  readonly afterPartial: number;
}

/**
 * One tile through a backward window over `regions`: forward from regions.firstLayer when it
 * recomputes, then backward from regions.lastLayer down to `fromLayer`. The partial input gradient
 * at `fromLayer` is computed unless `fromLayer` is the network's first layer.
 */
export function backwardTaskSeconds(ctx: CostContext, regions: FusedRegions, fromLayer: number, recompute: boolean): TaskSeconds {
  let total = ctx.profile.compute.taskOverheadMs / 1000 + (recompute ? forwardLayersSeconds(ctx, regions) : cheapStashesSeconds(ctx, regions));
  let afterPartial = 0;
  for (let l = regions.lastLayer; l >= fromLayer; l--) {
    const i = l - regions.firstLayer;
    const b = layerBackwardSeconds(ctx, l, regions.read[i]!, regions.held[i + 1]!, l > 0);
    total += b.total;
    if (l === fromLayer && l > 0) afterPartial = b.filterGradient;
  }
  return { total, afterPartial };
}

export interface Schedule {
  /** When the last task ends. */
  readonly makespan: number;
  /** When the last task reaches its `afterPartial` point (its partial gradient leaves). */
  readonly partialsOut: number;
}

/**
 * Tasks in order on `workers` threads, each taken by the first free thread (the worker engine's FIFO
 * queue). While more than one thread is busy each runs at `parallelEfficiency` of its rate.
 */
export function scheduleTasks(tasks: readonly TaskSeconds[], profile: DeviceProfile): Schedule {
  const threads = Math.min(profile.compute.workers, tasks.length);
  if (threads === 0) return { makespan: 0, partialsOut: 0 };
  const slowdown = threads > 1 ? 1 / profile.compute.parallelEfficiency : 1;
  const free = new Array<number>(threads).fill(0);
  let partialsOut = 0;
  for (const task of tasks) {
    let k = 0;
    for (let i = 1; i < threads; i++) if (free[i]! < free[k]!) k = i;
    free[k] = free[k]! + task.total * slowdown;
    partialsOut = Math.max(partialsOut, free[k]! - task.afterPartial * slowdown);
  }
  return { makespan: Math.max(...free), partialsOut };
}

/** FLOPs one tile computes through a forward run. */
export function forwardTaskFlops(ctx: CostContext, regions: FusedRegions): number {
  let flops = 0;
  for (let l = regions.firstLayer; l <= regions.lastLayer; l++) flops += layerFlops(ctx, l, regions.held[l + 1 - regions.firstLayer]!);
  return flops;
}

/** FLOPs one tile computes through a backward window: recompute, input gradients, filter gradients. */
export function backwardTaskFlops(ctx: CostContext, regions: FusedRegions, fromLayer: number, recompute: boolean): number {
  let flops = recompute ? forwardTaskFlops(ctx, regions) : 0;
  for (let l = regions.lastLayer; l >= fromLayer; l--) {
    const f = layerFlops(ctx, l, regions.held[l + 1 - regions.firstLayer]!);
    flops += ctx.net.layers[l]!.kind === 'maxpool' ? f : (l > 0 ? 2 : 1) * f;
    if (!recompute && recomputesStash(ctx, l)) flops += f;
  }
  return flops;
}
