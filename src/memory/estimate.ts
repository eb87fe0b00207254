// The plan's per-device memory prediction, before anything is allocated: the arena (exact: every
// step buffer is planned), each compute thread's backend heap (biases, batch norm and the largest
// working set of one band of one layer in one tile task, filter copies included, times the measured
// growth of the wasm heap over its live set), parameters and momentum, and the runtime (measured at
// start, plus a measured constant per compute thread).
import { type ArenaLayout, arenaBytes, planDeviceArenas } from './arena-plan.js';
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

/** Bytes live at the worst point of one layer's forward or backward in one tile task: its largest band's. */
function layerWorkingSet(plan: TilePlan, regions: FusedRegions, layer: number): number {
  const ctx = { layers: plan.net.layers, maps: plan.maps, batch: plan.batch };
  const [largest] = layerBands(ctx, regions, layer, BAND_BYTES);
  return bandWorkingSet(ctx, regions, layer, largest!.end - largest!.start);
}

export function largestWorkingSet(plan: TilePlan, rank: number): number {
  let largest = 0;
  const runs: FusedRegions[] = [];
  for (const tile of tilesOfDevice(plan, rank)) {
    for (const group of plan.forward) runs.push(group[tile]!);
    for (const window of plan.backward) runs.push(window.regions[tile]!);
  }
  for (const regions of runs) {
    for (let l = regions.firstLayer; l <= regions.lastLayer; l++) largest = Math.max(largest, layerWorkingSet(plan, regions, l));
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
  // (filters are copied in per layer: tile-compute.ts).
  const heap = threads * Math.max(MIN_WASM_HEAP_BYTES, HEAP_GROWTH * (largestWorkingSet(plan, rank) + affineParamsFloats(plan.net) * FLOAT));
  const rows = [
    { what: 'arena (every planned step buffer)', bytes: arenaBytes(arenas) },
    { what: `compute heap${threads > 1 ? ` (${threads} threads)` : ''}: largest band and its filters`, bytes: heap },
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
