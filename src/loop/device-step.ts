// One training step's front on one device: forward group by group with halo exchange at group starts,
// backward group by group with gradient halos added into their owners, then the weight-gradient
// all-reduce. All tiles of the device run concurrently; every cross-tile byte goes through `exchange`.
import * as tf from '@tensorflow/tfjs';
import { type FusedStash, type WeightGradient, backwardFused, disposeStash, forwardFused } from '../fused/fused-group.js';
import type { LayerTensors } from '../fused/layer-ops.js';
import type { Exchange } from '../peers/exchange.js';
import type { FusedRegions } from '../tiles/fused-regions.js';
import { type TilePlan, planCore, recomputeMaps, tilesOfDevice } from '../tiles/plan.js';
import { weightBucket } from './plan-messages.js';
import { type Region, regionHeight, regionWidth } from '../tiles/region.js';
import { TileExchange } from './tile-exchange.js';

export interface StepInputs {
  /** The network input of the batch over `region` of map 0 ([batch, rows, cols, channels]). */
  input(tile: number, region: Region): Float32Array;
  /** Given a tile's core of the front's output, the loss gradient over that core. */
  outputGradient(tile: number, core: Region, output: Float32Array): Promise<Float32Array>;
}

export interface WeightGradientArrays {
  readonly dFilter: Float32Array;
  readonly dBiases: Float32Array;
  readonly dScales?: Float32Array;
}

/** Where the step's wall time went on this device (compute runs on this thread, so the rest is waiting). */
export interface PhaseSeconds {
  readonly step: number;
  /** Forward, recompute and backward kernels of all local tiles. */
  readonly compute: number;
  /** Waiting for halos, gradient strips and the loss gradient while no local tile could compute. */
  readonly exchangeWait: number;
  /** The weight-gradient all-reduce (including summing local tiles). */
  readonly reduce: number;
}

export interface DeviceStepResult {
  readonly phases: PhaseSeconds;
  /** Summed over all devices (identical everywhere), indexed by layer; null for maxpool layers. */
  readonly weightGradients: (WeightGradientArrays | null)[];
  /** The loss gradient w.r.t. the network input over each local tile's core of map 0 (when asked). */
  readonly inputGradient: Map<number, Float32Array>;
}

export interface StepOptions {
  readonly step: number;
  readonly wantInputGradient: boolean;
}

export async function runDeviceStep(
  plan: TilePlan,
  params: readonly LayerTensors[],
  exchange: Exchange,
  inputs: StepInputs,
  options: StepOptions,
): Promise<DeviceStepResult> {
  const { net, batch } = plan;
  const tiles = tilesOfDevice(plan, exchange.rank);
  const toTensor = (map: number, region: Region, data: Float32Array): tf.Tensor4D =>
    tf.tensor4d(data, [batch, regionHeight(region), regionWidth(region), plan.maps[map]!.channels]);

  const strips = new TileExchange(plan, exchange, options.step);

  const stepStarted = performance.now();
  let computeMs = 0;
  /** Times synchronous compute (tfjs kernels run on this thread; data() of the wasm backend is immediate). */
  const compute = async <T>(work: () => T | Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      computeMs += performance.now() - started;
    }
  };

  const keepCoresAt = recomputeMaps(plan);
  const keptCores = new Map<string, Float32Array>(); // `${map}/${tile}`
  const keepForward = new Set(plan.backward.flatMap((w) => (w.reuseForward === null ? [] : [w.reuseForward])));
  const stashes = new Map<string, FusedStash>(); // `${group}/${tile}`
  const cores = new Map<number, Float32Array>(); // current forward core per tile

  // Gradient strips are opened before any compute: a neighbour that finishes its backward while this
  // device is still in forward then delivers into place. Their slots hold only the overlapping parts.
  const gradientFor = new Map<string, (partial: Float32Array) => Promise<Float32Array>>(); // `${group}/${tile}`
  plan.backward.forEach((window, h) => {
    if (window.group.first > 0 || options.wantInputGradient) for (const tile of tiles) gradientFor.set(`${h}/${tile}`, strips.openGradient(h, tile));
  });

  // Forward.
  const haloFor = new Map<number, (core: Float32Array) => Promise<Float32Array>>();
  for (let g = 0; g < plan.forwardGroups.length; g++) {
    const group = plan.forwardGroups[g]!;
    await Promise.all(
      tiles.map(async (tile) => {
        const regions = plan.forward[g]![tile]!;
        const wanted = (t: number) => plan.forward[g]![t]!.held[0]!;
        const inputData = g === 0 ? inputs.input(tile, wanted(tile)) : await haloFor.get(tile)!(cores.get(tile)!);
        // The next group's halo is expected before this group computes: neighbours that finish first
        // then deliver straight into place.
        if (g + 1 < plan.forwardGroups.length) haloFor.set(tile, strips.openHalo('halo', g + 1, tile));
        if (keepCoresAt.has(group.first)) keptCores.set(`${group.first}/${tile}`, g === 0 ? inputs.input(tile, planCore(plan, 0, tile)) : cores.get(tile)!);
        await compute(async () => {
          const x = toTensor(group.first, wanted(tile), inputData);
          const { output, stash } = forwardFused(net.layers, params, regions, x, keepForward.has(g));
          if (stash) stashes.set(`${g}/${tile}`, stash);
          else x.dispose();
          cores.set(tile, (await output.data()) as Float32Array);
          if (!stash) output.dispose();
        });
      }),
    );
  }

  // Loss gradient at the front's output.
  const lastMap = net.layers.length;
  const gradients = new Map<number, Float32Array>();
  await Promise.all(tiles.map(async (tile) => gradients.set(tile, await inputs.outputGradient(tile, planCore(plan, lastMap, tile), cores.get(tile)!))));

  // Backward.
  const perTile = new Map<number, Map<number, WeightGradient>[]>(tiles.map((t) => [t, []]));
  for (let h = plan.backward.length - 1; h >= 0; h--) {
    const window = plan.backward[h]!;
    const { group } = window;
    const wantInput = group.first > 0 || options.wantInputGradient;
    await Promise.all(
      tiles.map(async (tile) => {
        const regions: FusedRegions = window.regions[tile]!;
        let stash: FusedStash;
        if (window.reuseForward !== null) stash = stashes.get(`${window.reuseForward}/${tile}`)!;
        else {
          const from = window.recomputeFrom;
          const wanted = (t: number) => window.regions[t]!.held[0]!;
          const inputData = from === 0 ? inputs.input(tile, wanted(tile)) : await strips.openHalo('recompute', h, tile)(keptCores.get(`${from}/${tile}`)!);
          stash = await compute(() => forwardFused(net.layers, params, regions, toTensor(from, wanted(tile), inputData), true).stash!);
        }
        const endMap = group.last + 1;
        const partial = await compute(async () => {
          const dy = toTensor(endMap, planCore(plan, endMap, tile), gradients.get(tile)!);
          const { dInput, weights } = backwardFused(net.layers, params, stash, group.first, dy, wantInput);
          dy.dispose();
          disposeStash(stash);
          perTile.get(tile)!.push(weights);
          if (!dInput) return null;
          const data = (await dInput.data()) as Float32Array;
          dInput.dispose();
          return data;
        });
        if (partial) gradients.set(tile, await gradientFor.get(`${h}/${tile}`)!(partial));
      }),
    );
  }

  // Sum this device's tiles in tile order, then across devices.
  const reduceStarted = performance.now();
  const weightGradients: (WeightGradientArrays | null)[] = [];
  for (let l = 0; l < net.layers.length; l++) {
    const layer = net.layers[l]!;
    if (layer.kind !== 'conv') {
      weightGradients.push(null);
      continue;
    }
    const parts = tiles.flatMap((t) => perTile.get(t)!.flatMap((m) => (m.has(l) ? [m.get(l)!] : [])));
    const sum = async (pick: (w: WeightGradient) => tf.Tensor | undefined): Promise<Float32Array | null> => {
      const tensors = parts.map(pick).filter((t): t is tf.Tensor => t !== undefined);
      if (tensors.length === 0) return null;
      const total = tf.tidy(() => tensors.reduce((a, b) => tf.add(a, b)));
      const data = (await total.data()) as Float32Array;
      if (tensors.length > 1) total.dispose();
      return data;
    };
    const dFilter = await sum((w) => w.dFilter);
    const dBiases = await sum((w) => w.dBiases);
    const dScales = await sum((w) => w.dScales);
    for (const p of parts) tf.dispose([p.dFilter, p.dBiases, ...(p.dScales ? [p.dScales] : [])]);
    // One flat buffer per layer keeps the number of reductions small.
    const lengths = [dFilter!.length, dBiases!.length, dScales?.length ?? 0];
    const flat = new Float32Array(lengths[0]! + lengths[1]! + lengths[2]!);
    flat.set(dFilter!, 0);
    flat.set(dBiases!, lengths[0]);
    if (dScales) flat.set(dScales, lengths[0]! + lengths[1]!);
    await exchange.allReduceSum(weightBucket(options.step, l), flat);
    const filterPart = flat.subarray(0, lengths[0]);
    const biasPart = flat.subarray(lengths[0], lengths[0]! + lengths[1]!);
    weightGradients.push(dScales ? { dFilter: filterPart, dBiases: biasPart, dScales: flat.subarray(lengths[0]! + lengths[1]!) } : { dFilter: filterPart, dBiases: biasPart });
  }

  const finished = performance.now();
  const reduceMs = finished - reduceStarted;
  const phases = {
    step: (finished - stepStarted) / 1000,
    compute: computeMs / 1000,
    exchangeWait: Math.max(0, finished - stepStarted - computeMs - reduceMs) / 1000,
    reduce: reduceMs / 1000,
  };
  const inputGradient = new Map<number, Float32Array>();
  if (options.wantInputGradient) for (const t of tiles) inputGradient.set(t, gradients.get(t)!);
  return { phases, weightGradients, inputGradient };
}
