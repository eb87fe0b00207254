// The planner's per-grid cost tables: the cost of every possible forward group [a, b] and backward
// window [a, b] (recomputing from r, or reusing a forward stash) on one grid, with the device-level
// pieces of the cost model (task times from region sizes, list scheduling on the workers, strip
// traffic, link times). Each entry assumes the devices meet at the group's start, so a grouping's
// cost is the sum of its groups' costs: that is what makes the search a shortest path.
//
// One walk per (b, tile): the regions a tile needs through layers 0..b to produce its core of map
// b + 1. Any group ending at b uses a suffix of that walk (held regions do not depend on where the
// group starts), so every entry is a difference of prefix sums over the walk.
import type { Network } from '../model/layers.js';
import { type FusedRegions, fusedRegions } from '../tiles/fused-regions.js';
import { type Grid, tileCount } from '../tiles/grid.js';
import { parseGrouping } from '../tiles/groups.js';
import { buildTilePlan, planCore, recomputesStash, tilesOfDevice, weightBucketLength } from '../tiles/plan.js';
import { regionArea } from '../tiles/region.js';
import { type CostContext, type TaskSeconds, layerBackwardSeconds, layerForwardSeconds, scheduleTasks } from './compute-cost.js';
import type { DeviceProfile } from './profile.js';
import { type DeviceTraffic, exchangeWaitSeconds, handlingSeconds, ringAllReduceCost, stripTraffic } from './traffic.js';

export interface GroupTables {
  readonly grid: Grid;
  readonly layers: number;
  /** Forward group [a, b]: halo wait at its start plus the slowest device's compute. */
  forward(a: number, b: number): number;
  /** Backward window [a, b] recomputing from forward start r <= a, or reusing the forward group [a, b]. */
  backward(a: number, b: number, r: number, reuse: boolean): number;
  /** Bytes the forward group [a, b] keeps from forward to backward when a window reuses it (worst device). */
  keptBytes(a: number, b: number): number;
}

/** Per-layer seconds of one tile's walk, as prefix sums so any group's task costs O(1). */
interface WalkSeconds {
  /** forward[l]: seconds of layers 0..l-1 forward. */
  readonly forward: Float64Array;
  /** backward[l]: seconds of layers 0..l-1 backward (input gradient of layer 0 skipped). */
  readonly backward: Float64Array;
  /** filter[l]: layer l's filter-gradient seconds. */
  readonly filter: Float64Array;
}

function walkSeconds(ctx: CostContext, walk: FusedRegions): WalkSeconds {
  const n = walk.lastLayer + 1;
  const forward = new Float64Array(n + 1);
  const backward = new Float64Array(n + 1);
  const filter = new Float64Array(n);
  for (let l = 0; l < n; l++) {
    forward[l + 1] = forward[l]! + layerForwardSeconds(ctx, l, walk.read[l]!, walk.held[l + 1]!);
    const b = layerBackwardSeconds(ctx, l, walk.read[l]!, walk.held[l + 1]!, l > 0);
    backward[l + 1] = backward[l]! + b.total;
    filter[l] = b.filterGradient;
  }
  return { forward, backward, filter };
}

export function buildGroupTables(net: Network, grid: Grid, devices: number, batch: number, profile: DeviceProfile): GroupTables {
  const L = net.layers.length;
  // A plan on this grid for what does not depend on the grouping: tile map, cores, weight buckets.
  const base = buildTilePlan({ net, grid, devices, batch, forwardGroups: parseGrouping('each', L), backwardGroups: parseGrouping('each', L) });
  const { maps, tileDevice } = base;
  const tiles = tileCount(grid);
  const ctx: CostContext = { net, maps, batch, profile, recomputeStashFlops: base.recomputeStashFlops };
  const deviceTiles = Array.from({ length: devices }, (_, d) => tilesOfDevice(base, d));
  /** walks[b][t]: regions of tile t through layers 0..b. */
  const walks = net.layers.map((_, b) => Array.from({ length: tiles }, (_, t) => fusedRegions(net.layers, maps, 0, b, planCore(base, b + 1, t))));
  // The same walks in seconds. Task times below are compute-cost.ts's forwardTaskSeconds and
  // backwardTaskSeconds over slices of the walks, summed from prefixes (a test holds them equal).
  const seconds = walks.map((w) => w.map((walk) => walkSeconds(ctx, walk)));
  const taskOverhead = profile.compute.taskOverheadMs / 1000;
  const floatsPerPixel = (map: number) => batch * maps[map]!.channels;
  // Link time plus, as the full model charges them, the CPU for the bytes this device sends and
  // receives and its copies between its own tiles.
  const wait = (traffic: DeviceTraffic, d: number) => exchangeWaitSeconds(traffic, profile.link, d)
    + handlingSeconds(profile.link, traffic.sentBytes[d]! + traffic.receivedBytes[d]!)
    + traffic.localFloats[d]! / (profile.compute.elementwiseGflops * 1e9);
  const weightsOf = (a: number, b: number) => {
    let floats = 0;
    for (let l = a; l <= b; l++) floats += weightBucketLength(base, l) ?? 0;
    return floats;
  };

  // What a window over a..b that reuses forward spends recomputing its cheap stashes (plan.ts recomputesStash).
  const cheapLayers = net.layers.flatMap((_, l) => (recomputesStash(base, l) ? [l] : []));
  const cheapStashes = (w: WalkSeconds, a: number, b: number): number =>
    cheapLayers.reduce((sum, l) => (l >= a && l <= b ? sum + w.forward[l + 1]! - w.forward[l]! : sum), 0);

  // Strips into the extended input at map a of groups ending at b (halo and recompute input alike),
  // and partial gradients from it back into the cores.
  const traffic = (a: number, b: number, direction: 'in' | 'back'): DeviceTraffic => {
    const core = (t: number) => planCore(base, a, t);
    const extended = (t: number) => walks[b]![t]!.held[a]!;
    const [source, wanted] = direction === 'in' ? [core, extended] : [extended, core];
    return stripTraffic(tiles, source, wanted, tileDevice, devices, floatsPerPixel(a), profile.link);
  };
  // Waits per device, indexed [a * L + b][d]; computed once per (a, b).
  const haloWait: Float64Array[] = [];
  const gradWait: Float64Array[] = [];
  for (let b = 0; b < L; b++) {
    for (let a = 0; a <= b; a++) {
      const halo = a > 0 ? traffic(a, b, 'in') : null;
      const grad = a > 0 ? traffic(a, b, 'back') : null;
      haloWait[a * L + b] = Float64Array.from({ length: devices }, (_, d) => (halo ? wait(halo, d) : 0));
      gradWait[a * L + b] = Float64Array.from({ length: devices }, (_, d) => (grad ? wait(grad, d) : 0));
    }
  }

  const forward = new Float64Array(L * L);
  const kept = new Float64Array(L * L);
  const reused = new Float64Array(L * L);
  const recomputed = new Float64Array(L * L * L);
  // Weights reduced after the first window are not hidden behind later compute: charge them there.
  let firstWindowWeights = 0;
  for (let b = 0; b < L; b++) {
    firstWindowWeights += weightBucketLength(base, b) ?? 0;
    const exposedReduce = ringAllReduceCost(firstWindowWeights, devices, profile.link).seconds;
    for (let a = 0; a <= b; a++) {
      const halo = haloWait[a * L + b]!;
      const grad = gradWait[a * L + b]!;
      let worst = 0;
      let keptWorst = 0;
      for (let d = 0; d < devices; d++) {
        const tasks: TaskSeconds[] = deviceTiles[d]!.map((t) => ({ total: taskOverhead + seconds[b]![t]!.forward[b + 1]! - seconds[b]![t]!.forward[a]!, afterPartial: 0 }));
        worst = Math.max(worst, halo[d]! + scheduleTasks(tasks, profile).makespan);
        let floats = 0;
        // The maps a reusing window keeps: the input and every stash but the cheap ones it recomputes.
        for (const t of deviceTiles[d]!) {
          for (let m = a; m <= b + 1; m++) if (m === a || m === b + 1 || !cheapLayers.includes(m - 1)) floats += regionArea(walks[b]![t]!.held[m]!) * floatsPerPixel(m);
        }
        keptWorst = Math.max(keptWorst, floats * 4);
      }
      forward[a * L + b] = worst;
      kept[a * L + b] = keptWorst;

      // Backward: r = a with reuse, else every forward start r <= a to recompute from.
      const window = (r: number, recompute: boolean): number => {
        let slowest = 0;
        let gradient = 0;
        for (let d = 0; d < devices; d++) {
          const tasks: TaskSeconds[] = deviceTiles[d]!.map((t) => {
            const w = seconds[b]![t]!;
            const recomputeSeconds = recompute ? w.forward[b + 1]! - w.forward[r]! : cheapStashes(w, a, b);
            return { total: taskOverhead + recomputeSeconds + w.backward[b + 1]! - w.backward[a]!, afterPartial: a > 0 ? w.filter[a]! : 0 };
          });
          const schedule = scheduleTasks(tasks, profile);
          slowest = Math.max(slowest, (recompute ? haloWait[r * L + b]![d]! : 0) + schedule.makespan);
          gradient = Math.max(gradient, grad[d]! - (schedule.makespan - schedule.partialsOut));
        }
        // The window's own reduction takes CPU from the device (the full model charges it to the next window).
        const ringCpu = handlingSeconds(profile.link, 2 * ringAllReduceCost(weightsOf(a, b), devices, profile.link).bytesPerDevice);
        return slowest + Math.max(0, gradient) + ringCpu + (a === 0 ? exposedReduce : 0);
      };
      reused[a * L + b] = window(a, false);
      for (let r = 0; r <= a; r++) recomputed[(a * L + b) * L + r] = window(r, true);
    }
  }

  return new DenseTables(grid, L, forward, reused, recomputed, kept);
}

/** The tables as flat arrays only: the walks and traffic they came from can be collected. */
class DenseTables implements GroupTables {
  constructor(
    readonly grid: Grid,
    readonly layers: number,
    private readonly forwardCost: Float64Array,
    private readonly reusedCost: Float64Array,
    private readonly recomputedCost: Float64Array,
    private readonly kept: Float64Array,
  ) {}

  forward(a: number, b: number): number {
    return this.forwardCost[a * this.layers + b]!;
  }

  backward(a: number, b: number, r: number, reuse: boolean): number {
    const i = a * this.layers + b;
    return reuse ? this.reusedCost[i]! : this.recomputedCost[i * this.layers + r]!;
  }

  keptBytes(a: number, b: number): number {
    return this.kept[a * this.layers + b]!;
  }
}
