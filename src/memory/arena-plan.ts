// The static memory plan of one device's step: every buffer the step reads or writes (group inputs,
// stashes, cores, gradients, gradient-strip slots, weight-gradient buckets) with its size and its
// lifetime on the step's timeline, packed into one arena for the device. (One arena per layer group
// could not reuse a group's short-lived buffers for another group's: at 608x608 that costs 2x.) Each
// buffer names the group it belongs to, for reporting. Pure: sizes come from the tile plan only, so
// the plan's memory is known before anything is allocated.
import { type TilePlan, exchangeStrips, planCore, recomputesStash, tilesOfDevice, weightBucketLength } from '../tiles/plan.js';
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

/**
 * Slots of the step's timeline, in order: the forward groups, the loss, the backward windows (last
 * first: a recomputing window's forward pass, then its layers from the last down), the reduce. On a
 * device with one tile every layer has a slot of its own, so a stash is free once its layer's
 * backward ran and the gradient at a map once the layer below read it. A device's tiles run
 * concurrently (a task per compute worker), so with several tiles a group or a window is one slot.
 */
export interface StepTimeline {
  /** Layer `layer` of forward group g. */
  forward(group: number, layer: number): number;
  readonly loss: number;
  /** Layer `layer` of window h's recomputed forward pass. */
  recompute(window: number, layer: number): number;
  /** Layer `layer`'s backward in window h. */
  backward(window: number, layer: number): number;
  /** Window h's first slot (its recompute's, else its last layer's backward) and its last (its first layer's backward). */
  windowStart(window: number): number;
  windowEnd(window: number): number;
  readonly reduce: number;
}

const layerRange = (first: number, last: number): number[] => Array.from({ length: last - first + 1 }, (_, i) => first + i);

export function stepTimeline(plan: TilePlan, perLayer: boolean): StepTimeline {
  let slot = -1;
  const beginPhase = (): void => {
    if (!perLayer) slot++;
  };
  const take = (layers: readonly number[]): Map<number, number> => new Map(layers.map((l) => [l, perLayer ? ++slot : slot]));
  const forward = plan.forwardGroups.map((g) => {
    beginPhase();
    return take(layerRange(g.first, g.last));
  });
  const loss = ++slot;
  const recompute: Map<number, number>[] = [];
  const backward: Map<number, number>[] = [];
  for (let h = plan.backward.length - 1; h >= 0; h--) {
    const { group, reuseForward, recomputeFrom } = plan.backward[h]!;
    beginPhase();
    recompute[h] = take(reuseForward === null ? layerRange(recomputeFrom, group.last) : []);
    backward[h] = take(layerRange(group.first, group.last).reverse());
  }
  const reduce = ++slot;
  const at = (table: Map<number, number> | undefined, layer: number, what: string): number => {
    const s = table?.get(layer);
    if (s === undefined) throw new Error(`the step timeline has no ${what} slot for layer ${layer}`);
    return s;
  };
  const backwardAt = (h: number, l: number): number => at(backward[h], l, `window ${h} backward`);
  return {
    forward: (g, l) => at(forward[g], l, `group ${g} forward`),
    loss,
    recompute: (h, l) => at(recompute[h], l, `window ${h} recompute`),
    backward: backwardAt,
    windowStart: (h) => Math.min(backwardAt(h, plan.backward[h]!.group.last), ...(recompute[h]?.values() ?? [])),
    windowEnd: (h) => backwardAt(h, plan.backward[h]!.group.first),
    reduce,
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
  /** Layer l's stash as window h recomputes it (every layer of a recomputing window, cheap ones of a reusing one). */
  windowStash: (h: number, tile: number, layer: number) => `backward ${h}/tile ${tile}/stash ${layer}`,
  /** The loss gradient over the core of backward window h's output map. */
  windowOutputGradient: (h: number, tile: number) => `backward ${h}/tile ${tile}/output gradient`,
  /** The gradient between a window's layers in buffer `buffer` (windowGradientBuffer: which maps share it). */
  windowGradient: (h: number, tile: number, buffer: number) => `backward ${h}/tile ${tile}/gradient ${buffer}`,
  /** The partial gradient over the window's held region at its first map. */
  windowPartial: (h: number, tile: number) => `backward ${h}/tile ${tile}/partial`,
  /** Float64 sums of a filter gradient (two floats each): of layer l, or of every layer of the window in turn (null). */
  windowFilterSums: (h: number, tile: number, layer: number | null) => `backward ${h}/tile ${tile}/filter sums${layer === null ? '' : ` ${layer}`}`,
  /** Gradient strip from another tile, kept apart so sums run in tile order. */
  gradientSlot: (h: number, tile: number, from: number) => `backward ${h}/tile ${tile}/from ${from}`,
  /** The loss gradient over the tile's core of the input map (verification asks for it). */
  inputGradient: (tile: number) => `input gradient/tile ${tile}`,
  /** One conv layer's summed weight gradient: filter, biases, BN scales (the reduction bucket). */
  weightGradient: (layer: number) => `weights/layer ${layer}`,
  tileWeightGradient: (layer: number, tile: number) => `weights/layer ${layer}/tile ${tile}`,
};

/**
 * The buffer that holds the gradient at map m between a window's layers (written by layer m's
 * backward, read by layer m - 1's). On a device with one tile a buffer per map, free once the layer
 * below has read it; with several tiles the window is one slot, so per-map buffers would all be live
 * at once: two instead, alternating by the map's parity, each as large as its largest map.
 */
export const windowGradientBuffer = (tilesOnDevice: number, map: number): number => (tilesOnDevice === 1 ? map : map % 2);

/** The filter-sums buffer of conv layer l: its own with one tile on the device, else the window's, layer after layer. */
export const filterSumsLayer = (tilesOnDevice: number, layer: number): number | null => (tilesOnDevice === 1 ? layer : null);

export const arenaNames = {
  forward: (g: number) => `forward group ${g}`,
  backward: (h: number) => `backward group ${h}`,
  weights: 'weight gradients',
};

export interface ArenaPlanOptions {
  readonly wantInputGradient: boolean;
}

/** Floats of conv layer l's filter (0 for other layers). */
export function filterFloats(plan: TilePlan, l: number): number {
  const layer = plan.net.layers[l]!;
  return layer.kind === 'conv' ? layer.size * layer.size * plan.maps[l]!.channels * layer.filters : 0;
}

/** Floats of a region of map `map` for the whole batch. */
export function regionFloats(plan: TilePlan, map: number, region: Region): number {
  return plan.batch * regionArea(region) * plan.maps[map]!.channels;
}

/** Every arena of device `rank`, packed. */
export function planDeviceArenas(plan: TilePlan, rank: number, options: ArenaPlanOptions): ArenaLayout[] {
  const tiles = tilesOfDevice(plan, rank);
  const time = stepTimeline(plan, tiles.length === 1);
  const groups = plan.forwardGroups.length;
  const windows = plan.backward.length;
  const requests: BufferRequest[] = [];

  // Which backward window reuses each forward group's stash, and which windows recompute from a map.
  const reusedBy = new Map<number, number>();
  plan.backward.forEach((w, h) => {
    if (w.reuseForward !== null) reusedBy.set(w.reuseForward, h);
  });
  const lastRecomputeUse = (map: number): number | null => {
    const uses = plan.backward.flatMap((w, h) => (w.reuseForward === null && w.recomputeFrom === map ? [time.windowStart(h)] : []));
    return uses.length === 0 ? null : Math.max(...uses);
  };
  // A window's output gradient and recompute input arrive while the window before it (or the loss) runs.
  const arrivesFrom = (h: number): number => (h === windows - 1 ? time.loss : time.windowStart(h + 1));

  plan.forwardGroups.forEach((group, g) => {
    const owner = arenaNames.forward(g);
    const keptBy = reusedBy.get(g);
    const last = group.last;
    // The output core feeds the next group's halo (sent while that group starts), the loss after the
    // last group, and windows that recompute from the next map.
    const nextGroupEnd = g === groups - 1 ? time.loss : time.forward(g + 1, plan.forwardGroups[g + 1]!.last);
    const outputUntil = Math.max(nextGroupEnd, lastRecomputeUse(last + 1) ?? 0);
    for (const tile of tiles) {
      const regions = plan.forward[g]![tile]!;
      // Halo strips land while the previous group computes.
      const inputFrom = g === 0 ? 0 : time.forward(g - 1, plan.forwardGroups[g - 1]!.first);
      const inputUntil = keptBy === undefined ? time.forward(g, group.first) : time.backward(keptBy, group.first);
      requests.push({ key: bufferKeys.groupInput(g, tile), owner, floats: regionFloats(plan, group.first, regions.held[0]!), first: inputFrom, last: inputUntil });
      // Layer l's stash is read by layer l + 1 (forward, and backward as its input) and by l's backward,
      // unless backward recomputes it (then the last layer's is not written at all).
      for (let l = group.first; l <= (keptBy === undefined ? last - 1 : last); l++) {
        const recomputed = keptBy !== undefined && recomputesStash(plan, l);
        if (recomputed && l === last) continue;
        const until = keptBy === undefined || recomputed ? time.forward(g, l + 1) : time.backward(keptBy, l);
        requests.push({ key: bufferKeys.groupStash(g, tile, l), owner, floats: regionFloats(plan, l + 1, regions.held[l + 1 - group.first]!), first: time.forward(g, l), last: until });
      }
      requests.push({ key: bufferKeys.groupOutput(g, tile), owner, floats: regionFloats(plan, last + 1, planCore(plan, last + 1, tile)), first: time.forward(g, last), last: outputUntil });
    }
  });

  plan.backward.forEach((window, h) => {
    const owner = arenaNames.backward(h);
    const { group, recomputeFrom } = window;
    const backward = (l: number): number => time.backward(h, l);
    const end = time.windowEnd(h);
    const wantPartial = group.first > 0 || options.wantInputGradient;
    for (const tile of tiles) {
      const regions = window.regions[tile]!;
      if (window.reuseForward === null) {
        // The run's input is read by its first layer: in the recompute, and by that layer's backward
        // when the window starts there.
        const inputUntil = recomputeFrom === group.first ? backward(group.first) : time.recompute(h, recomputeFrom);
        requests.push({ key: bufferKeys.windowInput(h, tile), owner, floats: regionFloats(plan, recomputeFrom, regions.held[0]!), first: arrivesFrom(h), last: inputUntil });
        for (let l = recomputeFrom; l <= group.last; l++) {
          // Read by layer l's backward, or (below the window) as the input of the next layer's recompute and backward.
          const until = l >= group.first ? backward(l) : l === group.first - 1 ? backward(group.first) : time.recompute(h, l + 1);
          requests.push({ key: bufferKeys.windowStash(h, tile, l), owner, floats: regionFloats(plan, l + 1, regions.held[l + 1 - regions.firstLayer]!), first: time.recompute(h, l), last: until });
        }
      } else {
        // A cheap stash is recomputed when first read: by the next layer's backward (as its input),
        // else its own; a run of cheap layers all at once, when the top one is first read.
        for (let l = group.first; l <= group.last; l++) {
          if (!recomputesStash(plan, l)) continue;
          let top = l;
          while (top < group.last && recomputesStash(plan, top + 1)) top++;
          requests.push({ key: bufferKeys.windowStash(h, tile, l), owner, floats: regionFloats(plan, l + 1, regions.held[l + 1 - regions.firstLayer]!), first: backward(Math.min(top + 1, group.last)), last: backward(l) });
        }
      }
      const gradients = new Map<number, { floats: number; first: number; last: number }>();
      for (let m = group.first + 1; m <= group.last; m++) {
        const buffer = windowGradientBuffer(tiles.length, m);
        const floats = regionFloats(plan, m, regions.held[m - regions.firstLayer]!);
        const known = gradients.get(buffer);
        gradients.set(buffer, known
          ? { floats: Math.max(known.floats, floats), first: Math.min(known.first, backward(m)), last: Math.max(known.last, backward(m - 1)) }
          : { floats, first: backward(m), last: backward(m - 1) });
      }
      for (const [buffer, g] of gradients) requests.push({ key: bufferKeys.windowGradient(h, tile, buffer), owner, ...g });
      // Filter-gradient sums: live during their layer's backward only (with several tiles, the window's one slot).
      const convs = layerRange(group.first, group.last).filter((l) => plan.net.layers[l]!.kind === 'conv');
      if (tiles.length === 1) {
        for (const l of convs) requests.push({ key: bufferKeys.windowFilterSums(h, tile, l), owner, floats: 2 * filterFloats(plan, l), first: backward(l), last: backward(l) });
      } else if (convs.length > 0) {
        requests.push({ key: bufferKeys.windowFilterSums(h, tile, null), owner, floats: 2 * Math.max(...convs.map((l) => filterFloats(plan, l))), first: backward(group.last), last: end });
      }
      const outputMap = group.last + 1;
      requests.push({ key: bufferKeys.windowOutputGradient(h, tile), owner, floats: regionFloats(plan, outputMap, planCore(plan, outputMap, tile)), first: arrivesFrom(h), last: backward(group.last) });
      if (wantPartial) {
        // Gathered by the strips it sends, which may leave during the next window.
        const partialUntil = h === 0 ? time.reduce : time.windowEnd(h - 1);
        requests.push({ key: bufferKeys.windowPartial(h, tile), owner, floats: regionFloats(plan, group.first, regions.held[group.first - regions.firstLayer]!), first: backward(group.first), last: partialUntil });
        // Gradient strips are expected from the step's start: early senders deliver in place.
        for (const strip of exchangeStrips(plan, 'grad', h).strips) {
          if (strip.to !== tile || strip.from === tile) continue;
          requests.push({ key: bufferKeys.gradientSlot(h, tile, strip.from), owner, floats: regionFloats(plan, group.first, strip.region), first: 0, last: end });
        }
      }
      for (let l = group.first; l <= group.last; l++) {
        const length = weightBucketLength(plan, l);
        if (length !== null && tiles.length > 1) requests.push({ key: bufferKeys.tileWeightGradient(l, tile), owner, floats: length, first: backward(l), last: end });
      }
    }
    for (let l = group.first; l <= group.last; l++) {
      const length = weightBucketLength(plan, l);
      if (length !== null) requests.push({ key: bufferKeys.weightGradient(l), owner: arenaNames.weights, floats: length, first: backward(l), last: time.reduce });
    }
    if (h === 0 && options.wantInputGradient) {
      for (const tile of tiles) requests.push({ key: bufferKeys.inputGradient(tile), owner, floats: regionFloats(plan, 0, planCore(plan, 0, tile)), first: time.windowStart(h), last: time.reduce });
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
