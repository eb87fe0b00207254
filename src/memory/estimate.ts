// The plan's per-device memory prediction, before anything is allocated: the arena (exact: every
// step buffer is planned), each compute thread's backend heap (biases, batch norm, and the largest
// working set of one band of one layer in one tile task beside the filters kept for the task's run,
// each times the measured growth of the wasm heap over it), parameters and momentum, and the runtime
// (measured at start, plus a measured constant per compute thread).
import { type ArenaLayout, arenaBytes, filterFloats, planDeviceArenas } from './arena-plan.js';
import type { FusedRegions } from '../tiles/fused-regions.js';
import { type TilePlan, tilesOfDevice } from '../tiles/plan.js';
import { BAND_BYTES, bandWorkingSet, layerBands } from '../tiles/bands.js';
import { affineParamsFloats, sharedParamsFloats } from '../model/shared-params.js';

export interface MemoryEstimate {
  readonly rows: readonly { readonly what: string; readonly bytes: number }[];
  readonly totalBytes: number;
  readonly arenas: readonly ArenaLayout[];
}

const FLOAT = 4;
/** A wasm heap never starts smaller than this (tfjs-backend-wasm's initial memory). */
const MIN_WASM_HEAP_BYTES = 16 << 20;
/**
 * The wasm heap grows by at least 20% at a time and cannot reuse freed blocks that are split by live
 * ones, so it settles above the largest live set. Measured with the YOLOv2 front at 608x608 (1x1 and
 * 2x2 tiles, groupings each and 0,8,10,12,14, bands of 8 MiB): heap / modelled live set = 1.43-1.45.
 */
export const HEAP_GROWTH = 1.45;
/** RSS a compute thread adds once tfjs-core and its wasm backend are up (x64, Node 20, measured). */
export const COMPUTE_THREAD_BASE_BYTES = 56 << 20;
/** What the JS heaps, socket and message buffers grow by once steps run (measured 25-65 MiB at 608). */
export const STEP_RUNTIME_GROWTH_BYTES = 48 << 20;

/**
 * Bytes live at the worst point of one layer's forward or backward in one tile task (its largest
 * band's), split into the part bands shrink and the filter-sized buffers (the filter, its packed
 * and rotated copies) beside it.
 */
function layerWorkingSet(plan: TilePlan, regions: FusedRegions, layer: number): { band: number; filters: number } {
  const ctx = { layers: plan.net.layers, maps: plan.maps, batch: plan.batch };
  const [largest] = layerBands(ctx, regions, layer, BAND_BYTES);
  const rows = largest!.end - largest!.start;
  const band = bandWorkingSet(ctx, regions, layer, rows, 0);
  return { band, filters: bandWorkingSet(ctx, regions, layer, rows) - band };
}

/**
 * Bytes of layer l's filters a compute thread keeps while it computes a run (ComputeParams): the
 * filter and XNNPACK's packed copy of it, and in backward also the rotated filter and its packed copy.
 */
function keptFilterBytes(plan: TilePlan, l: number, backward: boolean): number {
  return (backward ? 4 : 2) * filterFloats(plan, l) * FLOAT;
}

/**
 * What filter-sized buffers grow the heap by, per byte: large blocks allocated between band buffers
 * (kept ones live across tasks), so the heap fragments more around them. Measured with the YOLOv2
 * front, 2x2 tiles, grouping `all` (one run keeps every filter, 52 MiB), at 96, 224 and 608: the
 * heap beyond HEAP_GROWTH times the rest was 1.53-1.61 times the kept filters; at 96 with one tile
 * (filters made per layer, none kept; filter-sized buffers most of the live set) the heap, 23.1 MiB,
 * was 1.68 times the largest layer's working set (13.7 MiB) (docs/ab-session8.txt section 2).
 * The heap grows in steps of 20%, so the same live set can end a step lower or higher: 1.75 keeps
 * the estimate above every measured heap.
 */
export const FILTER_GROWTH = 1.75;

/**
 * Whether compute threads keep a run's filters across tasks (ComputeParams): when a thread computes
 * several tiles of a run, so that they share one filter tensor and packing. With a tile per thread
 * nothing would be shared, and the heap holds one layer's filters at a time instead of a run's.
 */
export const keepsFiltersAcrossTasks = (tilesOnDevice: number, threads: number): boolean => tilesOnDevice > Math.max(1, threads);

/**
 * The heap a run grows at its worst point: a layer's largest band, beside the filters kept for the
 * run when they are kept. (The band's own filter-sized buffers are then counted twice for the layer
 * in hand: what a backward layer holds while its filter is also kept for a recompute is not worth a
 * finer count.)
 */
function runHeap(plan: TilePlan, regions: FusedRegions, backward: boolean, keepFilters: boolean): number {
  const layers = Array.from({ length: regions.lastLayer - regions.firstLayer + 1 }, (_, i) => regions.firstLayer + i);
  const kept = keepFilters ? layers.reduce((sum, l) => sum + keptFilterBytes(plan, l, backward), 0) : 0;
  return Math.max(...layers.map((l) => {
    const { band, filters } = layerWorkingSet(plan, regions, l);
    return HEAP_GROWTH * band + FILTER_GROWTH * (filters + kept);
  }));
}

/** The largest heap one of the device's tile tasks grows on a compute thread. */
export function largestTaskHeap(plan: TilePlan, rank: number, threads: number): number {
  const tiles = tilesOfDevice(plan, rank);
  const keepFilters = keepsFiltersAcrossTasks(tiles.length, threads);
  let largest = 0;
  for (const tile of tiles) {
    for (const group of plan.forward) largest = Math.max(largest, runHeap(plan, group[tile]!, false, keepFilters));
    for (const window of plan.backward) largest = Math.max(largest, runHeap(plan, window.regions[tile]!, true, keepFilters));
  }
  return largest;
}

export interface EstimateOptions {
  /** RSS of this process when the estimate is made (Node and the scheduler's modules; tfjs not loaded yet). */
  readonly runtimeBytes: number;
  /** Compute worker threads (0: compute on the main thread). */
  readonly workers: number;
  readonly wantInputGradient?: boolean;
}

export function estimateDeviceMemory(plan: TilePlan, rank: number, options: EstimateOptions): MemoryEstimate {
  const arenas = planDeviceArenas(plan, rank, { wantInputGradient: options.wantInputGradient ?? false });
  const threads = Math.max(1, options.workers);
  const paramBytes = sharedParamsFloats(plan.net) * FLOAT;
  // Each compute thread holds biases and batch norm as tensors besides the working set of one band
  // and the filters of the run it computes (ComputeParams keeps them for the run's tiles).
  const heap = threads * Math.max(MIN_WASM_HEAP_BYTES, largestTaskHeap(plan, rank, options.workers) + HEAP_GROWTH * affineParamsFloats(plan.net) * FLOAT);
  const rows = [
    { what: 'arena (every planned step buffer)', bytes: arenaBytes(arenas) },
    { what: `compute heap${threads > 1 ? ` (${threads} threads)` : ''}: largest band and its run's filters`, bytes: heap },
    { what: 'parameters and momentum', bytes: 2 * paramBytes },
    { what: 'runtime measured at start', bytes: options.runtimeBytes },
    { what: 'JS heaps and message buffers once steps run', bytes: STEP_RUNTIME_GROWTH_BYTES },
    // tfjs loads only where compute runs: in each worker, or in the main thread with --workers 0.
    { what: `tfjs and its backend${threads > 1 ? ` (${threads} threads)` : ''}`, bytes: threads * COMPUTE_THREAD_BASE_BYTES },
  ];
  return { rows, totalBytes: rows.reduce((sum, r) => sum + r.bytes, 0), arenas };
}

export function formatBytes(bytes: number): string {
  return bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(2)} GiB` : `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

export function formatEstimate(e: MemoryEstimate, limitBytes: number): string {
  const lines = e.rows.map((r) => `  ${r.what.padEnd(46)} ${formatBytes(r.bytes).padStart(11)}`);
  lines.push(`  ${'total'.padEnd(46)} ${formatBytes(e.totalBytes).padStart(11)}   (limit ${formatBytes(limitBytes)})`);
  return lines.join('\n');
}

/** "1G", "512M", "1.5GiB", "800000000" -> bytes. */
export function parseByteSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!match) throw new Error(`memory size must look like 1G, 512M or a byte count, got "${text}"`);
  const unit = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30 }[match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(match[1]) * unit);
}
