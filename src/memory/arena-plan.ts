// The static memory plan of one device's step: every buffer the step reads or writes (group inputs,
// stashes, cores, gradients, gradient-strip slots, weight-gradient buckets) with its size and its
// lifetime on the step's timeline, packed into one arena for the device. (One arena per layer group
// could not reuse a group's short-lived buffers for another group's: at 608x608 that costs 2x.) Each
// buffer names the group it belongs to, for reporting. Pure: sizes come from the tile plan only, so
// the plan's memory is known before anything is allocated.
import { type TilePlan, exchangeStrips, planCore, tilesOfDevice, weightBucketLength } from '../tiles/plan.js';
import { type Region, regionArea } from '../tiles/region.js';

/** Buffers start on 64-byte boundaries (16 floats): cache lines, and aligned Float32Array views. */
export const ALIGN_FLOATS = 16;

export interface BufferRequest {
  readonly key: string;
  /** The layer group the buffer belongs to (for reporting: arena use per group). */
  readonly owner: string;
  readonly floats: number;
  /** First and last timeline slot in which the buffer holds live data (inclusive). */
  readonly first: number;
  readonly last: number;
}

export interface PlacedBuffer extends BufferRequest {
  /** Float offset in its arena. */
  readonly offset: number;
}

export interface ArenaLayout {
  readonly name: string;
  /** Size of the arena in floats (what is reserved). */
  readonly floats: number;
  /** The most floats live at one time slot (what the step uses at its peak). */
  readonly peakLiveFloats: number;
  readonly buffers: readonly PlacedBuffer[];
}

const alignUp = (n: number): number => Math.ceil(n / ALIGN_FLOATS) * ALIGN_FLOATS;
const overlaps = (a: BufferRequest, b: BufferRequest): boolean => a.first <= b.last && b.first <= a.last;

/**
 * Largest first, each at the lowest offset where it collides with no placed buffer whose lifetime
 * overlaps its own (the greedy-by-size strategy of TFLite's arena planner).
 */
export function packArena(name: string, requests: readonly BufferRequest[]): ArenaLayout {
  const keys = new Set<string>();
  for (const r of requests) {
    if (keys.has(r.key)) throw new Error(`arena ${name}: buffer ${r.key} requested twice`);
    keys.add(r.key);
    if (!Number.isInteger(r.floats) || r.floats < 0) throw new Error(`arena ${name}: buffer ${r.key} has size ${r.floats}`);
    if (r.first > r.last) throw new Error(`arena ${name}: buffer ${r.key} ends (${r.last}) before it starts (${r.first})`);
  }
  const order = [...requests].sort((a, b) => b.floats - a.floats || a.key.localeCompare(b.key));
  const placed: PlacedBuffer[] = [];
  let floats = 0;
  for (const request of order) {
    const size = alignUp(request.floats);
    const busy = placed.filter((p) => overlaps(p, request)).sort((a, b) => a.offset - b.offset);
    let offset = 0;
    for (const p of busy) {
      if (offset + size <= p.offset) break;
      offset = Math.max(offset, p.offset + alignUp(p.floats));
    }
    placed.push({ ...request, offset });
    floats = Math.max(floats, offset + size);
  }
  const slots = new Set(requests.flatMap((r) => [r.first, r.last]));
  let peakLiveFloats = 0;
  for (const slot of slots) {
    const live = requests.reduce((sum, r) => (r.first <= slot && slot <= r.last ? sum + alignUp(r.floats) : sum), 0);
    peakLiveFloats = Math.max(peakLiveFloats, live);
  }
  placed.sort((a, b) => a.offset - b.offset);
  return { name, floats, peakLiveFloats, buffers: placed };
}

/** Slots of the step's timeline: forward groups, the loss, backward windows (last first), the reduce. */
export interface StepTimeline {
  forward(group: number): number;
  readonly loss: number;
  backward(window: number): number;
  readonly reduce: number;
}

export function stepTimeline(plan: TilePlan): StepTimeline {
  const groups = plan.forwardGroups.length;
  const windows = plan.backward.length;
  return {
    forward: (g) => g,
    loss: groups,
    backward: (h) => groups + 1 + (windows - 1 - h),
    reduce: groups + windows + 1,
  };
}

/** Buffer keys, one function per kind so the step and the plan cannot disagree on a name. */
export const bufferKeys = {
  /** Forward group g's input over its held region (the halo-extended input). */
  groupInput: (g: number, tile: number) => `forward ${g}/tile ${tile}/input`,
  /** What backward needs from layer l of forward group g (see tile-compute: pre-norm or output). */
  groupStash: (g: number, tile: number, layer: number) => `forward ${g}/tile ${tile}/stash ${layer}`,
  /**
   * Forward group g's output core. (A group whose stash backward does not reuse still has stash
   * buffers for all but its last layer, live only while it computes: each layer reads the previous
   * one's output from the arena.)
   */
  groupOutput: (g: number, tile: number) => `forward ${g}/tile ${tile}/output`,
  windowInput: (h: number, tile: number) => `backward ${h}/tile ${tile}/input`,
  windowStash: (h: number, tile: number, layer: number) => `backward ${h}/tile ${tile}/stash ${layer}`,
  /** The loss gradient over the core of backward window h's output map. */
  windowOutputGradient: (h: number, tile: number) => `backward ${h}/tile ${tile}/output gradient`,
  /** The gradient between a window's layers, at its maps of even (0) or odd (1) index, alternating. */
  windowGradient: (h: number, tile: number, parity: number) => `backward ${h}/tile ${tile}/gradient ${parity}`,
  /** The partial gradient over the window's held region at its first map. */
  windowPartial: (h: number, tile: number) => `backward ${h}/tile ${tile}/partial`,
  /** Gradient strip from another tile, kept apart so sums run in tile order. */
  gradientSlot: (h: number, tile: number, from: number) => `backward ${h}/tile ${tile}/from ${from}`,
  /** The loss gradient over the tile's core of the input map (verification asks for it). */
  inputGradient: (tile: number) => `input gradient/tile ${tile}`,
  /** One conv layer's summed weight gradient: filter, biases, BN scales (the reduction bucket). */
  weightGradient: (layer: number) => `weights/layer ${layer}`,
  tileWeightGradient: (layer: number, tile: number) => `weights/layer ${layer}/tile ${tile}`,
};

export const arenaNames = {
  forward: (g: number) => `forward group ${g}`,
  backward: (h: number) => `backward group ${h}`,
  weights: 'weight gradients',
};

export interface ArenaPlanOptions {
  readonly wantInputGradient: boolean;
}

/** Floats of a region of map `map` for the whole batch. */
export function regionFloats(plan: TilePlan, map: number, region: Region): number {
  return plan.batch * regionArea(region) * plan.maps[map]!.channels;
}

/** Every arena of device `rank`, packed. */
export function planDeviceArenas(plan: TilePlan, rank: number, options: ArenaPlanOptions): ArenaLayout[] {
  const time = stepTimeline(plan);
  const tiles = tilesOfDevice(plan, rank);
  const groups = plan.forwardGroups.length;
  const requests: BufferRequest[] = [];

  // Which backward window reuses each forward group's stash, and which windows recompute from a map.
  const reusedBy = new Map<number, number>();
  plan.backward.forEach((w, h) => {
    if (w.reuseForward !== null) reusedBy.set(w.reuseForward, h);
  });
  const lastRecomputeUse = (map: number): number | null => {
    const uses = plan.backward.flatMap((w, h) => (w.reuseForward === null && w.recomputeFrom === map ? [time.backward(h)] : []));
    return uses.length === 0 ? null : Math.max(...uses);
  };

  plan.forwardGroups.forEach((group, g) => {
    const owner = arenaNames.forward(g);
    const keptUntil = reusedBy.has(g) ? time.backward(reusedBy.get(g)!) : null;
    // The output core feeds the next group's halo, the loss after the last group, and windows that
    // recompute from the next map.
    const outputUntil = Math.max(g === groups - 1 ? time.loss : time.forward(g + 1), lastRecomputeUse(group.last + 1) ?? 0);
    for (const tile of tiles) {
      const regions = plan.forward[g]![tile]!;
      // Halo strips land while the previous group computes.
      requests.push({ key: bufferKeys.groupInput(g, tile), owner, floats: regionFloats(plan, group.first, regions.held[0]!), first: Math.max(0, g - 1), last: keptUntil ?? g });
      for (let l = group.first; l <= (keptUntil === null ? group.last - 1 : group.last); l++) {
        requests.push({ key: bufferKeys.groupStash(g, tile, l), owner, floats: regionFloats(plan, l + 1, regions.held[l + 1 - group.first]!), first: g, last: keptUntil ?? g });
      }
      requests.push({ key: bufferKeys.groupOutput(g, tile), owner, floats: regionFloats(plan, group.last + 1, planCore(plan, group.last + 1, tile)), first: g, last: outputUntil });
    }
  });

  plan.backward.forEach((window, h) => {
    const owner = arenaNames.backward(h);
    const now = time.backward(h);
    const { group } = window;
    const wantPartial = group.first > 0 || options.wantInputGradient;
    for (const tile of tiles) {
      const regions = window.regions[tile]!;
      if (window.reuseForward === null) {
        // The recompute input's strips are expected one window ahead.
        requests.push({ key: bufferKeys.windowInput(h, tile), owner, floats: regionFloats(plan, window.recomputeFrom, regions.held[0]!), first: now - 1, last: now });
        for (let l = window.recomputeFrom; l <= group.last; l++) {
          requests.push({ key: bufferKeys.windowStash(h, tile, l), owner, floats: regionFloats(plan, l + 1, regions.held[l + 1 - regions.firstLayer]!), first: now, last: now });
        }
      }
      // The gradient at maps group.first+1..group.last, alternating between two buffers.
      for (const parity of [0, 1]) {
        let floats = 0;
        for (let m = group.first + 1; m <= group.last; m++) {
          if (m % 2 === parity) floats = Math.max(floats, regionFloats(plan, m, regions.held[m - regions.firstLayer]!));
        }
        if (floats > 0) requests.push({ key: bufferKeys.windowGradient(h, tile, parity), owner, floats, first: now, last: now });
      }
      const outputMap = group.last + 1;
      requests.push({ key: bufferKeys.windowOutputGradient(h, tile), owner, floats: regionFloats(plan, outputMap, planCore(plan, outputMap, tile)), first: now - 1, last: now });
      if (wantPartial) {
        // Gathered by the strips it sends, which may leave during the next window.
        requests.push({ key: bufferKeys.windowPartial(h, tile), owner, floats: regionFloats(plan, group.first, regions.held[group.first - regions.firstLayer]!), first: now, last: now + 1 });
        // Gradient strips are expected from the step's start: early senders deliver in place.
        for (const strip of exchangeStrips(plan, 'grad', h).strips) {
          if (strip.to !== tile || strip.from === tile) continue;
          requests.push({ key: bufferKeys.gradientSlot(h, tile, strip.from), owner, floats: regionFloats(plan, group.first, strip.region), first: 0, last: now });
        }
      }
      for (let l = group.first; l <= group.last; l++) {
        const length = weightBucketLength(plan, l);
        if (length !== null && tiles.length > 1) requests.push({ key: bufferKeys.tileWeightGradient(l, tile), owner, floats: length, first: now, last: now });
      }
    }
    for (let l = group.first; l <= group.last; l++) {
      const length = weightBucketLength(plan, l);
      if (length !== null) requests.push({ key: bufferKeys.weightGradient(l), owner: arenaNames.weights, floats: length, first: now, last: time.reduce });
    }
    if (h === 0 && options.wantInputGradient) {
      for (const tile of tiles) requests.push({ key: bufferKeys.inputGradient(tile), owner, floats: regionFloats(plan, 0, planCore(plan, 0, tile)), first: now, last: time.reduce });
    }
  });
  return [packArena('device', requests)];
}

export const arenaBytes = (arenas: readonly ArenaLayout[]): number => arenas.reduce((sum, a) => sum + a.floats * 4, 0);

/** Bytes of the buffers of each layer group (what each group uses of the arena it shares). */
export function arenaUseByGroup(arena: ArenaLayout): Record<string, number> {
  const use: Record<string, number> = {};
  for (const b of arena.buffers) use[b.owner] = (use[b.owner] ?? 0) + b.floats * 4;
  return use;
}
