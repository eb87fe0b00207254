// The tile plan: everything each tile computes and exchanges in a step, derived from the network,
// grid and groupings. Pure and deterministic: every device derives the same plan from the same inputs.
import { type MapShape, type Network, mapShapes } from '../model/layers.js';
import { type TailLayer, tailShapes } from '../model/tail-layers.js';
import { type FusedRegions, fusedRegions } from './fused-regions.js';
import { type Grid, checkGridFits, coreRegion, tileCount } from './grid.js';
import type { LayerGroup } from './groups.js';
import { type Region, formatRegion, intersectRegions, isEmptyRegion } from './region.js';
import { type Strip, overlapStrips } from './strips.js';

/** How backward group h gets the forward values it needs. */
export interface BackwardWindow {
  readonly group: LayerGroup;
  /** Index of the forward group with the same layers: its stash is reused as is. */
  readonly reuseForward: number | null;
  /** Otherwise, forward is recomputed from this layer (a forward group start) over `regions`. */
  readonly recomputeFrom: number;
  /** Per tile, regions from recomputeFrom to group.last ending at the tile's core. */
  readonly regions: readonly FusedRegions[];
}

export interface TilePlan {
  readonly net: Network;
  readonly maps: readonly MapShape[];
  readonly grid: Grid;
  readonly tiles: number;
  readonly devices: number;
  readonly batch: number;
  /** Device rank of each tile (contiguous blocks of tiles). */
  readonly tileDevice: readonly number[];
  readonly forwardGroups: readonly LayerGroup[];
  readonly backwardGroups: readonly LayerGroup[];
  /** forward[g][tile]: regions of forward group g. */
  readonly forward: readonly (readonly FusedRegions[])[];
  readonly backward: readonly BackwardWindow[];
  /** Layers after the front, run by the head (empty: a front-only model). */
  readonly tail: readonly TailLayer[];
  /**
   * Data-parallel replicas (1: none). With N > 1 the cluster has N devices, each training `batch`
   * images of its own through this one-device plan and summing gradients with the others.
   */
  readonly replicas: number;
  /**
   * A window that reuses its forward group recomputes the stash of each conv whose FLOPs per stashed
   * value are at most this, instead of keeping it (recomputesStash; 0 keeps every stash).
   */
  readonly recomputeStashFlops: number;
}

export interface PlanRequest {
  readonly net: Network;
  readonly grid: Grid;
  readonly devices: number;
  readonly batch: number;
  readonly forwardGroups: readonly LayerGroup[];
  readonly backwardGroups: readonly LayerGroup[];
  readonly tail?: readonly TailLayer[];
  readonly replicas?: number;
  /** Default CHEAP_STASH_FLOPS_PER_VALUE. */
  readonly recomputeStashFlops?: number;
}

export function buildTilePlan(request: PlanRequest): TilePlan {
  const { net, grid, devices, batch, forwardGroups, backwardGroups } = request;
  const tail = request.tail ?? [];
  const maps = mapShapes(net);
  checkGridFits(grid, maps);
  tailShapes(maps[maps.length - 1]!, tail); // throws when the front's output is too small for the tail
  const tiles = tileCount(grid);
  if (!Number.isInteger(devices) || devices < 1 || devices > tiles) {
    throw new Error(`devices must be between 1 and the ${tiles} tiles of grid ${grid.rows}x${grid.cols}, got ${devices}`);
  }
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`batch must be a positive integer, got ${batch}`);
  const replicas = request.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`replicas must be a positive integer, got ${replicas}`);
  if (replicas > 1 && devices !== 1) throw new Error(`data-parallel replicas each train whole images on one device; a plan over ${devices} devices cannot be replicated`);
  const core = (map: number, tile: number): Region => coreRegion(grid, maps[map]!, tile);
  const tileIds = Array.from({ length: tiles }, (_, t) => t);
  const regionsFor = (first: number, last: number) =>
    tileIds.map((t) => fusedRegions(net.layers, maps, first, last, core(last + 1, t)));

  const forward = forwardGroups.map((g) => regionsFor(g.first, g.last));
  const backward = backwardGroups.map((group): BackwardWindow => {
    const same = forwardGroups.findIndex((g) => g.first === group.first && g.last === group.last);
    if (same >= 0) return { group, reuseForward: same, recomputeFrom: group.first, regions: forward[same]! };
    const recomputeFrom = [...forwardGroups].reverse().find((g) => g.first <= group.first)!.first;
    return { group, reuseForward: null, recomputeFrom, regions: regionsFor(recomputeFrom, group.last) };
  });
  return {
    net, maps, grid, tiles, devices, batch,
    tileDevice: tileIds.map((t) => Math.floor((t * devices) / tiles)),
    forwardGroups, backwardGroups, forward, backward, tail, replicas,
    recomputeStashFlops: request.recomputeStashFlops ?? CHEAP_STASH_FLOPS_PER_VALUE,
  };
}

/** Devices in the cluster: those the tiles are spread over, times the data-parallel replicas. */
export const clusterSize = (plan: TilePlan): number => plan.devices * plan.replicas;

export const tilesOfDevice = (plan: TilePlan, rank: number): number[] =>
  plan.tileDevice.flatMap((device, tile) => (device === rank ? [tile] : []));

export const planCore = (plan: TilePlan, map: number, tile: number): Region => coreRegion(plan.grid, plan.maps[map]!, tile);

/**
 * By default a window that reuses its forward group's stash still recomputes the stash of a conv
 * this cheap (FLOPs per stashed value: 2 * size^2 * input channels) from that layer's input, which
 * it keeps anyway, instead of keeping the stash from forward to backward. An RGB network's first 3x3
 * conv costs 54 per value against 288 or more for every other YOLOv2 layer, and its stash is the
 * largest map of the step: 47 MiB at 608x608 unpartitioned, 12 MiB per tile on a 2x2 grid, kept
 * through the whole step for well under 1% of the step's FLOPs.
 */
export const CHEAP_STASH_FLOPS_PER_VALUE = 64;

/** Whether reusing windows recompute layer l's stash in backward instead of keeping it (see above). */
export function recomputesStash(plan: Pick<TilePlan, 'net' | 'maps' | 'recomputeStashFlops'>, layer: number): boolean {
  const l = plan.net.layers[layer];
  return l?.kind === 'conv' && 2 * l.size * l.size * plan.maps[layer]!.channels <= plan.recomputeStashFlops;
}

/** Maps whose cores must be kept through the step because a backward window recomputes from them. */
export function recomputeMaps(plan: TilePlan): Set<number> {
  return new Set(plan.backward.filter((w) => w.reuseForward === null).map((w) => w.recomputeFrom));
}

/** Exchange points between tiles (the head's phases are in stripPart). */
export type TilePhase = 'halo' | 'recompute' | 'grad';

/** What crosses the network at one exchange point: strip from->to = source(from) ∩ wanted(to). */
export interface ExchangeRegions {
  readonly map: number;
  readonly source: (tile: number) => Region;
  readonly wanted: (tile: number) => Region;
}

/**
 * halo g: forward group g's extended input, from the cores of its first map (g >= 1).
 * recompute h: backward window h's input, from the cores of its recompute map.
 * grad h: backward group h's partial gradients, into the cores of its first map.
 */
export function exchangeRegions(plan: TilePlan, phase: TilePhase, group: number): ExchangeRegions {
  if (phase === 'halo') {
    const g = plan.forwardGroups[group];
    if (!g || group === 0) throw new Error(`forward group ${group} has no halo exchange (groups 1..${plan.forwardGroups.length - 1})`);
    return { map: g.first, source: (t) => planCore(plan, g.first, t), wanted: (t) => plan.forward[group]![t]!.held[0]! };
  }
  const w = plan.backward[group];
  if (!w) throw new Error(`backward group ${group} does not exist (0..${plan.backward.length - 1})`);
  if (phase === 'recompute') {
    if (w.reuseForward !== null || w.recomputeFrom === 0) throw new Error(`backward group ${group} does not exchange a recompute input`);
    return { map: w.recomputeFrom, source: (t) => planCore(plan, w.recomputeFrom, t), wanted: (t) => w.regions[t]!.held[0]! };
  }
  const map = w.group.first;
  return { map, source: (t) => w.regions[t]!.held[map - w.regions[t]!.firstLayer]!, wanted: (t) => planCore(plan, map, t) };
}

/** Every non-empty strip of one exchange point, including each tile's part of its own region. */
export function exchangeStrips(plan: TilePlan, phase: TilePhase, group: number): { map: number; strips: Strip[] } {
  const { map, source, wanted } = exchangeRegions(plan, phase, group);
  return { map, strips: overlapStrips(plan.tiles, source, wanted) };
}

/** Floats of one conv layer's weight-gradient bucket (filter, biases, BN scales); null without weights. */
export function weightBucketLength(plan: TilePlan, layer: number): number | null {
  const l = plan.net.layers[layer];
  if (!l || l.kind !== 'conv') return null;
  const inChannels = plan.maps[layer]!.channels;
  return l.size * l.size * inChannels * l.filters + l.filters + (l.batchNormalize ? l.filters : 0);
}

/** The device that runs the tail. */
export const HEAD_RANK = 0;

/** The head's address in strips: a pseudo tile after the real ones. */
export const headTile = (plan: TilePlan): number => plan.tiles;

/** Device of every strip endpoint: the tiles, then the head when the model has a tail. */
export function stripEndpoints(plan: TilePlan): number[] {
  return plan.tail.length > 0 ? [...plan.tileDevice, HEAD_RANK] : [...plan.tileDevice];
}

export type StripPhaseName = TilePhase | 'output' | 'outgrad' | 'input';

/**
 * The part of the input map (map 0) a tile reads during a step: forward group 0's extended input and
 * the input of every backward window that recomputes from layer 0 (their bounding box).
 */
export function tileInputRegion(plan: TilePlan, tile: number): Region {
  const regions = [plan.forward[0]![tile]!.held[0]!, ...plan.backward.filter((w) => w.reuseForward === null && w.recomputeFrom === 0).map((w) => w.regions[tile]!.held[0]!)];
  return {
    rows: { start: Math.min(...regions.map((r) => r.rows.start)), end: Math.max(...regions.map((r) => r.rows.end)) },
    cols: { start: Math.min(...regions.map((r) => r.cols.start)), end: Math.max(...regions.map((r) => r.cols.end)) },
  };
}

/**
 * The region a strip (phase, group, from -> to) carries and the map it lies in; throws when the plan
 * has no such strip. Halo, recompute and gradient strips run between tiles: source(from) ∩ wanted(to).
 * `output` strips carry a tile's core of the front's output to the head, `outgrad` strips the loss
 * gradient over that core back, `input` strips the tile's input region from the head (the data
 * source); all use group 0.
 */
export function stripPart(plan: TilePlan, phase: StripPhaseName, group: number, from: number, to: number): { map: number; region: Region } {
  const head = headTile(plan);
  if (phase === 'output' || phase === 'outgrad') {
    if (plan.tail.length === 0) throw new Error(`the plan has no tail, so no ${phase} strips`);
    if (group !== 0) throw new Error(`${phase} strips use group 0, got ${group}`);
    const tile = phase === 'output' ? from : to;
    const ok = phase === 'output' ? to === head && from >= 0 && from < plan.tiles : from === head && to >= 0 && to < plan.tiles;
    if (!ok) throw new Error(`${phase} strips run ${phase === 'output' ? 'from a tile to the head' : 'from the head to a tile'} (head = tile ${head}), not ${from}>${to}`);
    const map = plan.net.layers.length;
    return { map, region: planCore(plan, map, tile) };
  }
  if (phase === 'input') {
    if (plan.tail.length === 0) throw new Error('the plan has no tail, so no head sends input strips');
    if (group !== 0) throw new Error(`input strips use group 0, got ${group}`);
    if (from !== head || to < 0 || to >= plan.tiles) throw new Error(`input strips run from the head (tile ${head}) to a tile, not ${from}>${to}`);
    return { map: 0, region: tileInputRegion(plan, to) };
  }
  if (from < 0 || from >= plan.tiles || to < 0 || to >= plan.tiles) throw new Error(`${phase} strips run between tiles 0..${plan.tiles - 1}, not ${from}>${to}`);
  const { map, source, wanted } = exchangeRegions(plan, phase, group);
  const region = intersectRegions(source(from), wanted(to));
  if (isEmptyRegion(region)) throw new Error(`tiles ${from} and ${to} exchange nothing in ${phase} ${group} (${formatRegion(source(from))} against ${formatRegion(wanted(to))})`);
  return { map, region };
}
