// Chooses the grid and the forward and backward groupings that minimise the predicted step time
// under a per-device memory limit. Deterministic (no time budgets): every device that runs it with
// the same inputs gets the same plan.
//
// 1. Grids: every R x C with devices <= R*C <= maxTiles that fits the smallest map.
// 2. Per grid, a shortest path over layer boundaries (group-search.ts) on additive per-group costs
//    (group-tables.ts). That cost assumes the devices meet at every group start and charges the
//    reduce of the first window's weights only; the full model (cost.ts) overlaps more. So the path
//    is a proposal, and every candidate is ranked by the full model.
// 3. Candidates per grid: the proposal, `each`, `all` and the reference groupings. Grids are visited
//    best first; a grid stops being worth visiting once its best candidate is slower than the best
//    plan that fits. Memory (estimateDeviceMemory, the expensive part) is only predicted for a
//    candidate that would become the best. When a proposal does not fit, the search is repeated
//    with a growing penalty on the stashes kept from forward to backward (a Lagrangian relaxation of
//    the memory limit).
// 4. Local search from the best plan with the full model: add or remove one forward or one backward
//    boundary while it helps and fits.
import { type Network, mapShapes } from '../model/layers.js';
import { type Grid, checkGridFits } from '../tiles/grid.js';
import { type LayerGroup, formatGrouping, parseGrouping } from '../tiles/groups.js';
import { buildTilePlan } from '../tiles/plan.js';
import { type MemoryPrediction, type StepPrediction, predictMemory, predictStep } from './cost.js';
import { type GroupTables, buildGroupTables } from './group-tables.js';
import { type FixedGroupings, type Grouping, groupsFromStarts, searchGroupings } from './group-search.js';
import type { DeviceProfile } from './profile.js';

export interface PlanRequest {
  readonly net: Network;
  readonly devices: number;
  readonly batch: number;
  readonly memoryLimitBytes: number;
  readonly profile: DeviceProfile;
  /** Fix the grid instead of searching grids. */
  readonly grid?: Grid;
  readonly fixed?: FixedGroupings;
  /** Most tiles considered; default devices x max(4, 2 x workers). */
  readonly maxTiles?: number;
}

export interface PlanCandidate {
  /** How the candidate was found: planned, each, all, or a reference grouping. */
  readonly name: string;
  readonly grid: Grid;
  readonly forward: readonly LayerGroup[];
  readonly backward: readonly LayerGroup[];
  readonly time: StepPrediction;
  readonly memory: MemoryPrediction;
  readonly fits: boolean;
}

export interface PlanResult {
  readonly best: PlanCandidate;
  /** `each`, `all` and the reference groupings on the best plan's grid, then the best plans of the next grids. */
  readonly runnerUps: readonly PlanCandidate[];
  readonly gridsConsidered: number;
  readonly gridsSearched: number;
  readonly planEvaluations: number;
  readonly memoryEvaluations: number;
}

export class NoPlanFitsError extends Error {
  override name = 'NoPlanFitsError';
}

/** Reference groupings of the authors' prototype (FACTS.md), for 16-layer fronts. */
export const REFERENCE_GROUPINGS: readonly { readonly name: string; readonly forward: string; readonly backward: string }[] = [
  { name: 'reference 0,8,10,12,14', forward: '0,8,10,12,14', backward: '0,8,10,12,14' },
  // Forward starts {1,2,4,8}; backward groups end at {1,5,7,9}, so they start at 2, 6, 8 and 10.
  { name: 'reference 1,2,4,8 / ends 1,5,7,9', forward: '0,1,2,4,8', backward: '0,2,6,8,10' },
];

/**
 * R x C grids that fit every map, fewest tiles first: every tile count from `devices` to twice that,
 * then only multiples of `devices` up to maxTiles (other counts leave some devices a tile more than
 * others, which costs time; below 2x devices they are kept for what they save in memory).
 */
export function candidateGrids(net: Network, devices: number, maxTiles: number): Grid[] {
  const maps = mapShapes(net);
  const grids: Grid[] = [];
  for (let tiles = devices; tiles <= maxTiles; tiles++) {
    if (tiles > 2 * devices && tiles % devices !== 0) continue;
    for (let rows = 1; rows <= tiles; rows++) {
      if (tiles % rows !== 0) continue;
      const grid = { rows, cols: tiles / rows };
      try {
        checkGridFits(grid, maps);
        grids.push(grid);
      } catch {
        // Too many rows or columns for the smallest map: not a candidate.
      }
    }
  }
  return grids;
}

const gridKey = (g: Grid) => `${g.rows}x${g.cols}`;
const keyOf = (grid: Grid, g: Grouping) => `${gridKey(grid)} ${formatGrouping(g.forward)} / ${formatGrouping(g.backward)}`;

interface Evaluated {
  readonly name: string;
  readonly grid: Grid;
  readonly grouping: Grouping;
  readonly time: StepPrediction;
}

export function planGroupings(request: PlanRequest): PlanResult {
  const { net, devices, batch, profile, memoryLimitBytes } = request;
  const L = net.layers.length;
  const fixed = request.fixed ?? {};
  if (!Number.isInteger(devices) || devices < 1) throw new Error(`devices must be a positive integer, got ${devices}`);
  if (!(memoryLimitBytes > 0)) throw new Error(`memory limit must be positive, got ${memoryLimitBytes}`);
  const maxTiles = request.maxTiles ?? devices * Math.max(4, 2 * profile.compute.workers);
  const grids = request.grid ? [request.grid] : candidateGrids(net, devices, maxTiles);
  if (request.grid) checkGridFits(request.grid, mapShapes(net));
  if (grids.length === 0) throw new Error(`no grid of ${devices} to ${maxTiles} tiles fits the ${net.name} maps`);

  let planEvaluations = 0;
  let memoryEvaluations = 0;
  const times = new Map<string, Evaluated>();
  const memories = new Map<string, MemoryPrediction>();
  const planOf = (grid: Grid, g: Grouping) => buildTilePlan({ net, grid, devices, batch, forwardGroups: g.forward, backwardGroups: g.backward });
  const evaluate = (name: string, grid: Grid, grouping: Grouping): Evaluated => {
    const key = keyOf(grid, grouping);
    let e = times.get(key);
    if (!e) {
      planEvaluations++;
      e = { name, grid, grouping, time: predictStep(planOf(grid, grouping), profile) };
      times.set(key, e);
    }
    return { ...e, name };
  };
  // Memory of every device, or (stopAbove) only until one device is over the limit.
  const memoryOf = (e: Evaluated, stopAbove = Infinity): MemoryPrediction => {
    const key = keyOf(e.grid, e.grouping);
    let m = memories.get(key);
    if (!m || (!m.complete && m.peakBytes <= stopAbove)) {
      memoryEvaluations++;
      m = predictMemory(planOf(e.grid, e.grouping), profile, stopAbove);
      memories.set(key, m);
    }
    return m;
  };
  const fits = (e: Evaluated) => memoryOf(e, memoryLimitBytes).peakBytes <= memoryLimitBytes;

  // Groupings every grid tries besides the searched one (the caller's fixed groupings win).
  const named = [
    { name: 'each', forward: 'each', backward: 'each' },
    { name: 'all', forward: 'all', backward: 'all' },
    ...(L === 16 ? REFERENCE_GROUPINGS : []),
  ].map((n) => ({
    name: n.name,
    grouping: { forward: fixed.forward ?? parseGrouping(n.forward, L), backward: fixed.backward ?? parseGrouping(n.backward, L) },
  }));

  // Visit grids in order of their best full-model candidate.
  const perGrid = grids.map((grid) => {
    const tables = buildGroupTables(net, grid, devices, batch, profile);
    const proposal = searchGroupings(tables, 0, fixed);
    const candidates = [evaluate('planned', grid, proposal.grouping), ...named.map((n) => evaluate(n.name, grid, n.grouping))]
      .sort((x, y) => x.time.stepSeconds - y.time.stepSeconds);
    return { grid, tables, candidates };
  }).sort((x, y) => x.candidates[0]!.time.stepSeconds - y.candidates[0]!.time.stepSeconds);

  let best: Evaluated | null = null;
  const bestPerGrid: Evaluated[] = [];
  let gridsSearched = 0;
  for (const g of perGrid) {
    if (best && g.candidates[0]!.time.stepSeconds >= best.time.stepSeconds) break;
    gridsSearched++;
    const gridBest = bestFittingOnGrid(g, best, fixed, evaluate, fits, memoryLimitBytes);
    if (gridBest) {
      bestPerGrid.push(gridBest);
      if (!best || gridBest.time.stepSeconds < best.time.stepSeconds) best = gridBest;
    }
  }
  if (!best) throw noPlanFits(request, times, memories, memoryOf);

  best = improveLocally(best, L, fixed, evaluate, fits);

  const asCandidate = (e: Evaluated): PlanCandidate => {
    const memory = memoryOf(e);
    return { name: e.name, grid: e.grid, forward: e.grouping.forward, backward: e.grouping.backward, time: e.time, memory, fits: memory.peakBytes <= memoryLimitBytes };
  };
  const bestKey = keyOf(best.grid, best.grouping);
  const sameGrid = named.map((n) => evaluate(n.name, best!.grid, n.grouping)).filter((e) => keyOf(e.grid, e.grouping) !== bestKey);
  // The next grids in visiting order: their best plan that fits if one was found, else their fastest.
  const otherGrids = perGrid.filter((g) => gridKey(g.grid) !== gridKey(best!.grid)).slice(0, OTHER_GRIDS)
    .map((g) => bestPerGrid.find((e) => gridKey(e.grid) === gridKey(g.grid)) ?? g.candidates[0]!);
  const seen = new Set<string>();
  const runnerUps = [...sameGrid, ...otherGrids].filter((e) => {
    const key = keyOf(e.grid, e.grouping);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return {
    best: asCandidate(best),
    runnerUps: runnerUps.map(asCandidate),
    gridsConsidered: grids.length,
    gridsSearched,
    planEvaluations,
    memoryEvaluations,
  };
}

/** Runner-ups from grids other than the chosen one. */
const OTHER_GRIDS = 2;
/** Memory checks per grid before falling back to the frugal candidates: memory is the expensive part. */
const MEMORY_CHECKS_PER_GRID = 3;
/** Penalties on kept stashes, in units of (fastest candidate's step time / memory limit) per byte. */
const PENALTIES = [0.25, 1, 4, 16, 64, 256, 1e9];

/**
 * The fastest candidate of a grid that fits and beats `best`. Candidates are the grid's named
 * groupings and proposals under growing penalties on kept stashes (a Lagrangian relaxation of the
 * memory limit). Memory is checked in time order for at most MEMORY_CHECKS_PER_GRID of them; if none
 * fits, for the most memory-averse proposal and `each` (the smallest regions), and a grid where
 * those miss too is given up.
 */
function bestFittingOnGrid(
  g: { grid: Grid; tables: GroupTables; candidates: Evaluated[] },
  best: Evaluated | null,
  fixed: FixedGroupings,
  evaluate: (name: string, grid: Grid, g: Grouping) => Evaluated,
  fits: (e: Evaluated) => boolean,
  memoryLimitBytes: number,
): Evaluated | null {
  const beats = (e: Evaluated) => !best || e.time.stepSeconds < best.time.stepSeconds;
  const scale = g.candidates[0]!.time.stepSeconds / memoryLimitBytes;
  const proposals = PENALTIES.map((factor) => evaluate('planned', g.grid, searchGroupings(g.tables, scale * factor, fixed).grouping));
  const seen = new Set<string>();
  const distinct = (list: Evaluated[]) => list.filter((e) => {
    const key = keyOf(e.grid, e.grouping);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const byTime = distinct([...g.candidates, ...proposals].sort((x, y) => x.time.stepSeconds - y.time.stepSeconds)).filter(beats);
  const first = byTime.slice(0, MEMORY_CHECKS_PER_GRID);
  for (const c of first) if (fits(c)) return c;
  const checked = new Set(first.map((c) => keyOf(c.grid, c.grouping)));
  const frugal = [proposals[proposals.length - 1]!, g.candidates.find((c) => c.name === 'each')!]
    .filter((c) => beats(c) && !checked.has(keyOf(c.grid, c.grouping)))
    .sort((x, y) => x.time.stepSeconds - y.time.stepSeconds);
  return frugal.find(fits) ?? null;
}

/** One boundary added or removed, forward or backward, while the full model improves and memory fits. */
function improveLocally(
  start: Evaluated,
  L: number,
  fixed: FixedGroupings,
  evaluate: (name: string, grid: Grid, g: Grouping) => Evaluated,
  fits: (e: Evaluated) => boolean,
): Evaluated {
  const toggle = (groups: readonly LayerGroup[], p: number): LayerGroup[] => {
    const starts = new Set(groups.map((g) => g.first));
    if (starts.has(p)) starts.delete(p);
    else starts.add(p);
    return groupsFromStarts([...starts].sort((a, b) => a - b), L);
  };
  let current = start;
  for (let round = 0; round < 4 * L; round++) {
    const neighbours: Grouping[] = [];
    for (let p = 1; p < L; p++) {
      if (!fixed.forward) neighbours.push({ forward: toggle(current.grouping.forward, p), backward: current.grouping.backward });
      if (!fixed.backward) neighbours.push({ forward: current.grouping.forward, backward: toggle(current.grouping.backward, p) });
    }
    const better = neighbours
      .map((g) => evaluate(start.name === 'planned' ? 'planned' : `${start.name} + local search`, current.grid, g))
      .filter((e) => e.time.stepSeconds < current.time.stepSeconds)
      .sort((x, y) => x.time.stepSeconds - y.time.stepSeconds);
    const next = better.find(fits);
    if (!next) return current;
    current = next;
  }
  return current;
}

/** The refusal, naming the smallest peak among the plans whose memory was predicted. */
function noPlanFits(
  request: PlanRequest,
  evaluated: ReadonlyMap<string, Evaluated>,
  memories: ReadonlyMap<string, MemoryPrediction>,
  memoryOf: (e: Evaluated) => MemoryPrediction,
): NoPlanFitsError {
  const mib = (b: number) => `${(b / (1 << 20)).toFixed(1)} MiB`;
  // Checked plans may hold a lower bound only (stopped at the first device over the limit); the
  // smallest is then predicted for every device.
  const checked = [...memories.entries()].sort((x, y) => x[1].peakBytes - y[1].peakBytes);
  const smallest = checked.length > 0 ? evaluated.get(checked[0]![0]) : undefined;
  const where = smallest
    ? `the smallest predicted peak is ${mib(memoryOf(smallest).peakBytes)} (grid ${gridKey(smallest.grid)}, forward ${formatGrouping(smallest.grouping.forward)}, backward ${formatGrouping(smallest.grouping.backward)})`
    : 'no plan was evaluated';
  return new NoPlanFitsError(
    `no plan fits the memory limit of ${mib(request.memoryLimitBytes)} per device on ${request.devices} devices: ${where}; ` +
      'use more devices, a smaller batch or input, or a higher limit',
  );
}
