// One training step's front on one device: forward group by group with halo exchange at group starts,
// backward window by window with gradient halos added into their owners, and the weight-gradient
// all-reduce. This is the scheduler: it owns the step's state and the exchange, and hands compute
// to an engine (worker threads or inline). Every buffer is a planned slot of the device's arenas.
// With overlap on, a window's partial gradient leaves before its first layer's filter gradient is
// computed, and each layer's all-reduce starts as soon as its gradient is final.
import type { BufferLocation, DeviceArenas } from '../memory/arena.js';
import { bufferKeys, filterSumsLayer, windowGradientBuffer } from '../memory/arena-plan.js';
import type { Exchange } from '../peers/exchange.js';
import { type TilePlan, planCore, recomputesStash, tilesOfDevice, weightBucketLength } from '../tiles/plan.js';
import type { Region } from '../tiles/region.js';
import type { ComputeEngine } from './compute-engine.js';
import { weightBucket } from './plan-messages.js';
import { TileExchange } from './tile-exchange.js';

export interface StepInputs {
  /** Writes the network input of the batch over `region` of map 0 into `target` ([batch, rows, cols, channels]). */
  input(tile: number, region: Region, target: Float32Array): void;
  /** Given a tile's core of the front's output, the loss gradient over that core. */
  outputGradient(tile: number, core: Region, output: Float32Array): Promise<Float32Array>;
}

export interface WeightGradientArrays {
  readonly dFilter: Float32Array;
  readonly dBiases: Float32Array;
  readonly dScales?: Float32Array;
}

/** Where the step's wall time went on this device. */
export interface PhaseSeconds {
  readonly step: number;
  /** Time compute threads spent in tasks (mean over threads). */
  readonly compute: number;
  /** Time compute threads sat idle during the step (mean over threads): waiting for data. */
  readonly computeIdle: number;
  /** The part of the step spent waiting for halos, gradient strips and the loss gradient. */
  readonly exchangeWait: number;
  /** Gathering strips into messages and handing them to the transport (on the scheduler thread). */
  readonly send: number;
  /** From the end of the last compute task until every weight-gradient reduction completed. */
  readonly reduce: number;
}

export interface DeviceStepResult {
  readonly phases: PhaseSeconds;
  /** Summed over all devices (identical everywhere), indexed by layer; null for maxpool layers. Views into the arenas, valid until the next step. */
  readonly weightGradients: (WeightGradientArrays | null)[];
  /** The loss gradient w.r.t. the network input over each local tile's core of map 0 (when asked). */
  readonly inputGradient: Map<number, Float32Array>;
}

export interface StepOptions {
  readonly step: number;
  readonly wantInputGradient: boolean;
}

/** What a device keeps across steps: its plan, arenas and compute engine. */
export interface DeviceRuntime {
  readonly plan: TilePlan;
  readonly rank: number;
  readonly arenas: DeviceArenas;
  readonly engine: ComputeEngine;
  /** Overlap communication with compute (off only to measure what overlap gains). */
  readonly overlap: boolean;
}

export async function runDeviceStep(runtime: DeviceRuntime, exchange: Exchange, inputs: StepInputs, options: StepOptions): Promise<DeviceStepResult> {
  const { plan, arenas, engine, overlap } = runtime;
  const { net } = plan;
  const keys = bufferKeys;
  const tiles = tilesOfDevice(plan, exchange.rank);
  const view = (key: string): Float32Array => arenas.view(key);
  const at = (key: string): BufferLocation => arenas.locate(key);
  const layersOf = (first: number, last: number, key: (l: number) => string): Record<number, BufferLocation> =>
    Object.fromEntries(Array.from({ length: last - first + 1 }, (_, i) => [first + i, at(key(first + i))]));
  const strips = new TileExchange(plan, exchange, options.step);
  const groups = plan.forwardGroups.length;
  const windows = plan.backward.length;
  const wantPartial = (h: number): boolean => plan.backward[h]!.group.first > 0 || options.wantInputGradient;
  const keepForward = new Set(plan.backward.flatMap((w) => (w.reuseForward === null ? [] : [w.reuseForward])));

  engine.takeBusySeconds();
  const stepStarted = performance.now();

  // Gradient strips are expected before any compute: a neighbour that finishes its backward while
  // this device is still in forward then delivers into place.
  const sendGradient = new Map<string, (partial: Float32Array, sum: Float32Array) => Promise<void>>(); // `${h}/${tile}`
  for (let h = 0; h < windows; h++) {
    if (!wantPartial(h)) continue;
    for (const tile of tiles) sendGradient.set(`${h}/${tile}`, strips.openGradient(h, tile, (from) => view(keys.gradientSlot(h, tile, from))));
  }
  // A recompute window's input strips are expected one window ahead.
  const recomputeHalo = new Map<string, (core: Float32Array) => Promise<void>>();
  const openRecompute = (h: number): void => {
    const w = plan.backward[h];
    if (!w || w.reuseForward !== null || w.recomputeFrom === 0) return;
    for (const tile of tiles) recomputeHalo.set(`${h}/${tile}`, strips.openHalo('recompute', h, tile, view(keys.windowInput(h, tile))));
  };

  // Forward.
  const haloFor = new Map<number, (core: Float32Array) => Promise<void>>();
  for (let g = 0; g < groups; g++) {
    const group = plan.forwardGroups[g]!;
    await Promise.all(tiles.map(async (tile) => {
      const regions = plan.forward[g]![tile]!;
      if (g === 0) inputs.input(tile, regions.held[0]!, view(keys.groupInput(0, tile)));
      else await haloFor.get(tile)!(view(keys.groupOutput(g - 1, tile)));
      // The next group's halo is expected before this group computes: neighbours that finish first
      // then deliver straight into place.
      if (g + 1 < groups) haloFor.set(tile, strips.openHalo('halo', g + 1, tile, view(keys.groupInput(g + 1, tile))));
      await engine.run({
        kind: 'forward',
        regions,
        input: at(keys.groupInput(g, tile)),
        // Backward reuses the stash, or only the next layer reads each layer's output (arena-plan.ts);
        // a stash backward recomputes is not written by the last layer.
        stash: layersOf(group.first, keepForward.has(g) && !recomputesStash(plan, group.last) ? group.last : group.last - 1, (l) => keys.groupStash(g, tile, l)),
        output: at(keys.groupOutput(g, tile)),
      });
    }));
  }

  // Loss gradient at the front's output.
  openRecompute(windows - 1);
  const lastMap = net.layers.length;
  await Promise.all(tiles.map(async (tile) => {
    const gradient = await inputs.outputGradient(tile, planCore(plan, lastMap, tile), view(keys.groupOutput(groups - 1, tile)));
    view(keys.windowOutputGradient(windows - 1, tile)).set(gradient);
  }));

  // Backward, last window first. Each layer's reduction starts once all local tiles have its gradient.
  const reductions: Promise<void>[] = [];
  let computeEnded = performance.now();
  for (let h = windows - 1; h >= 0; h--) {
    const window = plan.backward[h]!;
    const { group } = window;
    openRecompute(h - 1);
    // Where this window's summed gradient goes: the next window's output gradient, or the input's.
    const sumKey = (tile: number): string => (h > 0 ? keys.windowOutputGradient(h - 1, tile) : keys.inputGradient(tile));
    await Promise.all(tiles.map(async (tile) => {
      const regions = window.regions[tile]!;
      let input: BufferLocation;
      let stash: Record<number, BufferLocation>;
      const recompute: number[] = [];
      if (window.reuseForward !== null) {
        input = at(keys.groupInput(window.reuseForward, tile));
        for (let l = group.first; l <= group.last; l++) if (recomputesStash(plan, l)) recompute.push(l);
        stash = layersOf(group.first, group.last, (l) => (recompute.includes(l) ? keys.windowStash(h, tile, l) : keys.groupStash(window.reuseForward!, tile, l)));
      } else {
        const from = window.recomputeFrom;
        input = at(keys.windowInput(h, tile));
        if (from === 0) inputs.input(tile, regions.held[0]!, view(keys.windowInput(h, tile)));
        else {
          const sourceGroup = plan.forwardGroups.findIndex((fg) => fg.first === from);
          await recomputeHalo.get(`${h}/${tile}`)!(view(keys.groupOutput(sourceGroup - 1, tile)));
        }
        stash = layersOf(from, group.last, (l) => keys.windowStash(h, tile, l));
        await engine.run({ kind: 'forward', regions, input, stash, output: null });
      }
      const weights = Object.fromEntries(Array.from({ length: group.last - group.first + 1 }, (_, i) => group.first + i)
        .filter((l) => weightBucketLength(plan, l) !== null)
        .map((l) => [l, at(tiles.length > 1 ? keys.tileWeightGradient(l, tile) : keys.weightGradient(l))]));
      const partial = wantPartial(h) ? at(keys.windowPartial(h, tile)) : null;
      const gradients = group.first < group.last ? layersOf(group.first + 1, group.last, (m) => keys.windowGradient(h, tile, windowGradientBuffer(tiles.length, m))) : {};
      let sent: Promise<void> = Promise.resolve();
      const send = (): void => {
        sent = sendGradient.get(`${h}/${tile}`)!(view(keys.windowPartial(h, tile)), view(sumKey(tile)));
        sent.catch(() => undefined); // awaited after the task; a peer failure must not surface as unhandled meanwhile
      };
      await engine.run({
        kind: 'backward', regions, fromLayer: group.first, input, stash, recompute,
        outputGradient: at(keys.windowOutputGradient(h, tile)), partial, gradients, weights,
        filterSums: Object.fromEntries(Object.keys(weights).map((l) => [l, at(keys.windowFilterSums(h, tile, filterSumsLayer(tiles.length, Number(l))))])),
      }, partial && overlap ? send : undefined);
      if (partial && !overlap) send();
      await sent;
    }));
    computeEnded = performance.now();
    for (let l = group.first; l <= group.last; l++) {
      if (weightBucketLength(plan, l) === null) continue;
      const bucket = view(keys.weightGradient(l));
      if (tiles.length > 1) {
        // Local tiles summed in tile order: the same rounding on every run.
        bucket.fill(0);
        for (const tile of tiles) {
          const part = view(keys.tileWeightGradient(l, tile));
          for (let i = 0; i < bucket.length; i++) bucket[i] = bucket[i]! + part[i]!;
        }
      }
      const reduced = exchange.allReduceSum(weightBucket(options.step, l), bucket);
      if (overlap) {
        reduced.catch(() => undefined); // awaited below; a failure must not surface as unhandled meanwhile
        reductions.push(reduced);
      } else await reduced;
    }
  }
  await Promise.all(reductions);
  const finished = performance.now();

  const weightGradients: (WeightGradientArrays | null)[] = net.layers.map((layer, l) => {
    if (layer.kind !== 'conv') return null;
    const bucket = view(keys.weightGradient(l));
    const filter = layer.size * layer.size * plan.maps[l]!.channels * layer.filters;
    const dFilter = bucket.subarray(0, filter);
    const dBiases = bucket.subarray(filter, filter + layer.filters);
    return layer.batchNormalize ? { dFilter, dBiases, dScales: bucket.subarray(filter + layer.filters) } : { dFilter, dBiases };
  });
  const busy = engine.takeBusySeconds();
  const compute = busy.reduce((a, b) => a + b, 0) / busy.length;
  const stepSeconds = (finished - stepStarted) / 1000;
  const reduce = (finished - computeEnded) / 1000;
  const phases: PhaseSeconds = {
    step: stepSeconds,
    compute,
    computeIdle: Math.max(0, stepSeconds - compute),
    exchangeWait: Math.max(0, stepSeconds - compute - reduce),
    send: strips.sendMs / 1000,
    reduce,
  };
  const inputGradient = new Map<number, Float32Array>();
  if (options.wantInputGradient) for (const t of tiles) inputGradient.set(t, view(keys.inputGradient(t)));
  return { phases, weightGradients, inputGradient };
}
