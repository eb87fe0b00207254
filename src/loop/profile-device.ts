// `edge profile`: measures this device with the ops and the code path training runs, and fills in a
// DeviceProfile (src/grouping/profile.ts) for the planner.
// - Conv rates: per conv rule class of the model's front (input channels, kernel), the three conv ops
//   of layer-ops.ts at a 2x2-grid tile of the class's largest layer (its padded input, as a tile
//   reads it), and at the whole map too when that fits a time budget (reported, not used: tiles are
//   what training runs).
// - Maxpool forward/backward at a tile of each distinct maxpool layer.
// - Layer and task overheads: steps of a tiny network (compute negligible) through runDeviceStep and
//   the compute engine, on 1x1 and 2x2 grids with groupings `all` and `each`, fitted by least squares
//   to step = fixed + tasks x taskOverhead + layer passes x layerOverhead (fastest step of each).
// - Elementwise passes (padding, batch norm + activation, buffer copies: JS loops and copies whose
//   speed depends on the data): calibrated on real steps of the front (whole when they are short,
//   else at half its input: calibrationInput), so that the
//   cost model with the rates above reproduces them; --quick times the passes one by one instead.
// - Parallel efficiency (workers > 1): the same conv work on one compute worker alone, then on all at once.
// The link is not measured here (devices measure their links at cluster start and log them).
import { cpus, hostname } from 'node:os';
import { initBackend } from '../fused/backend.js';
import type { BackendName } from '../fused/backend-name.js';
import {
  type ConvBenchSpec, type ConvTimings, type ElementwiseTimings, type MaxpoolTimings, type Shape4, benchFlops, timeConv, timeElementwise, timeMaxpool,
} from '../fused/kernel-bench.js';
import { type ConvRule, type DeviceProfile, type LinkProfile, parseProfile } from '../grouping/profile.js';
import { type ConvLayer, type FrontLayer, type MapShape, type MaxpoolLayer, type Network, forwardFlops, mapShapes } from '../model/layers.js';
import { parseCfg } from '../model/cfg.js';
import { sharedParamsFloats } from '../model/shared-params.js';
import { withInputSize } from '../model/presets.js';
import { fillUniform, initialParams, seededRandom } from '../model/weights.js';
import { predictStep } from '../grouping/cost.js';
import { createInMemoryCluster } from '../peers/in-memory.js';
import { parseGrouping } from '../tiles/groups.js';
import { copySubRegion, extractSubRegion } from '../tiles/layout.js';
import { type TilePlan, buildTilePlan } from '../tiles/plan.js';
import { type Region, wholeMap } from '../tiles/region.js';
import { createDeviceRuntime } from './device-runtime.js';
import { runDeviceStep } from './device-step.js';
import { WorkerEngine } from './worker-engine.js';

/** The requested --backend does not start on this device (not installed, or no native library). */
export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError';
}

export interface ProfileRequest {
  /** The model's front at the input size to profile (its batch is the cfg's). */
  readonly net: Network;
  /** Compute workers (0: compute on the main thread, profiled as 1 worker). */
  readonly workers: number;
  readonly backend?: BackendName;
  /** A few seconds: one timed run per op, no whole maps, fewer overhead steps. */
  readonly quick: boolean;
  readonly link: LinkProfile;
  /** RSS of this process before tfjs was loaded. */
  readonly runtimeBytes: number;
  readonly linkNote: string;
  readonly name?: string;
  readonly log: (line: string) => void;
  readonly workerScript?: URL;
}

export interface ConvClassMeasurement {
  /** The rule's key: input channels and kernel size. */
  readonly inChannels: number;
  readonly kernel: number;
  /** Layers of the front in this class; `layer` is the one measured (the most FLOPs). */
  readonly layers: readonly number[];
  readonly layer: number;
  readonly tile: RateSet;
  readonly whole: RateSet | null;
}

export interface RateSet {
  /** The padded input [batch, rows, cols, channels]. */
  readonly read: Shape4;
  readonly forwardGflops: number;
  readonly inputGradientGflops: number;
  readonly filterGradientGflops: number;
}

export interface OverheadSample {
  readonly grid: string;
  readonly grouping: string;
  readonly tasks: number;
  readonly layerPasses: number;
  /** The fastest of the timed steps. */
  readonly stepMs: number;
}

export interface CalibrationStep {
  readonly grouping: string;
  readonly input: string;
  /** The fastest step's wall time less the fitted fixed cost per step. */
  readonly measuredSeconds: number;
  /** The cost model's compute for that step without elementwise passes. */
  readonly withoutElementwiseSeconds: number;
  /** The elements the cost model charges that step's elementwise passes. */
  readonly elements: number;
}

export interface ProfileMeasurement {
  readonly profile: DeviceProfile;
  readonly backend: string;
  readonly conv: readonly ConvClassMeasurement[];
  readonly maxpool: { readonly layers: readonly number[]; readonly forwardGflops: number; readonly backwardGflops: number; readonly synthetic: boolean };
  readonly elementwise: { readonly method: 'calibrated' | 'timed'; readonly gflops: number; readonly steps: readonly CalibrationStep[] };
  readonly overhead: { readonly samples: readonly OverheadSample[]; readonly fixedStepMs: number; readonly taskOverheadMs: number; readonly layerOverheadMs: number };
  readonly parallel: { readonly workers: number; readonly aloneSeconds: number; readonly togetherSeconds: readonly number[]; readonly efficiency: number } | null;
  readonly runtimeMiB: number;
  readonly seconds: number;
}

const GIGA = 1e9;
/** Estimated seconds above which a class's whole map is not measured (default run only). */
const WHOLE_MAP_BUDGET_SECONDS = 4;

/** 3 significant digits: a profile is an estimate, and a short number reads better. */
export const round3 = (x: number): number => (x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(3)));

const gflops = (flops: number, seconds: number): number => flops / Math.max(seconds, 1e-9) / GIGA;

/**
 * The padded input a tile reads for a layer: the top-left tile of a rows x cols grid over the
 * layer's output map (cores as src/tiles/grid.ts sizes them: the first tiles get the remainder).
 */
export function tileRead(layer: FrontLayer, inMap: MapShape, outMap: MapShape, batch: number, rows: number, cols: number): { read: Shape4; padTop: number; padLeft: number } {
  const core = (n: number, parts: number) => Math.ceil(n / Math.min(parts, n));
  const extent = (out: number) => (out - 1) * layer.stride + layer.size;
  const outRows = core(outMap.height, rows);
  const outCols = core(outMap.width, cols);
  // Rows before the map are padding; with a single tile the read may also run past the map's end (more padding).
  const padTop = Math.min(layer.padBefore, extent(outRows));
  const padLeft = Math.min(layer.padBefore, extent(outCols));
  return { read: [batch, extent(outRows), extent(outCols), inMap.channels], padTop, padLeft };
}

function rateSet(t: ConvTimings, read: Shape4): RateSet {
  return {
    read,
    forwardGflops: gflops(t.flops, t.forwardSeconds),
    inputGradientGflops: gflops(t.flops, t.inputGradientSeconds),
    filterGradientGflops: gflops(t.flops, t.filterGradientSeconds),
  };
}

interface ConvClass {
  readonly inChannels: number;
  readonly kernel: number;
  readonly layers: number[];
}

/** The distinct (input channels, kernel) classes of the front's conv layers, by kernel then channels. */
export function convClasses(net: Network): ConvClass[] {
  const maps = mapShapes(net);
  const classes = new Map<string, ConvClass>();
  net.layers.forEach((layer, l) => {
    if (layer.kind !== 'conv') return;
    const inChannels = maps[l]!.channels;
    const key = `${layer.size}/${inChannels}`;
    const c = classes.get(key) ?? { inChannels, kernel: layer.size, layers: [] };
    c.layers.push(l);
    classes.set(key, c);
  });
  return [...classes.values()].sort((a, b) => a.kernel - b.kernel || a.inChannels - b.inChannels);
}

/**
 * Conv rules from measured classes: per kernel size, one rule per input-channel class in ascending
 * order (a layer matches the smallest class at or above its channels), the largest class of each
 * kernel without a channel bound (it covers wider layers of other models), and a catch-all from the
 * FLOP-weighted rate of every class measured (other kernel sizes).
 */
export function convRules(measured: readonly { inChannels: number; kernel: number; rates: RateSet; flops: number }[]): ConvRule[] {
  const rules: ConvRule[] = [];
  const rates = (r: RateSet) => ({ forwardGflops: round3(r.forwardGflops), inputGradientGflops: round3(r.inputGradientGflops), filterGradientGflops: round3(r.filterGradientGflops) });
  measured.forEach((m, i) => {
    const widest = measured.slice(i + 1).every((other) => other.kernel !== m.kernel);
    rules.push({ ...(widest ? {} : { maxInChannels: m.inChannels }), kernel: m.kernel, ...rates(m.rates) });
  });
  // Catch-all: total FLOPs over total seconds of each op.
  const total = (pick: (r: RateSet) => number) => {
    const flops = measured.reduce((s, m) => s + m.flops, 0);
    const seconds = measured.reduce((s, m) => s + m.flops / (pick(m.rates) * GIGA), 0);
    return flops / seconds / GIGA;
  };
  rules.push(rates({ read: [1, 1, 1, 1], forwardGflops: total((r) => r.forwardGflops), inputGradientGflops: total((r) => r.inputGradientGflops), filterGradientGflops: total((r) => r.filterGradientGflops) }));
  return rules;
}

/** A tiny network (compute negligible next to the fixed costs): `layers` 3x3 BN leaky convs of 4 channels on 8x8. */
export function overheadNetwork(layers: number): Network {
  const conv = '[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\n';
  return parseCfg(`[net]\nbatch=1\nwidth=8\nheight=8\nchannels=4\n${conv.repeat(layers)}`, 'overhead-probe', 'overhead-probe').network;
}

/** Engine runs and the layers they pass through in one step of `plan` on one device. */
export function stepWork(plan: TilePlan): { tasks: number; layerPasses: number } {
  let tasks = 0;
  let layerPasses = 0;
  for (const g of plan.forwardGroups) {
    tasks += 1;
    layerPasses += g.last - g.first + 1;
  }
  for (const w of plan.backward) {
    tasks += w.reuseForward === null ? 2 : 1;
    layerPasses += w.group.last - w.group.first + 1 + (w.reuseForward === null ? w.group.last - w.recomputeFrom + 1 : 0);
  }
  return { tasks: tasks * plan.tiles, layerPasses: layerPasses * plan.tiles };
}

/** Whole-input steps predicted (without elementwise passes) to take at most this long are calibrated on as they are. */
const FULL_INPUT_CALIBRATION_SECONDS = 1;

/**
 * The front the elementwise calibration times: as it is when its steps are short, so that fixed
 * per-step costs weigh as they will in training (at half a 224x224 input they were charged per
 * element and the profile predicted the whole input's steps 2x too slow), else at half its input.
 */
export function calibrationInput(net: Network, provisional: DeviceProfile): Network {
  const groups = parseGrouping('all', net.layers.length);
  const plan = buildTilePlan({ net, grid: { rows: 1, cols: 1 }, devices: 1, batch: net.hyper.batch, forwardGroups: groups, backwardGroups: groups });
  return predictStep(plan, withElementwise(provisional, 1e12)).computeSeconds <= FULL_INPUT_CALIBRATION_SECONDS ? net : halfInput(net);
}

/** The front at half its input (about the maps of a 2x2 tile), or as it is when that is too small. */
export function halfInput(net: Network): Network {
  try {
    const half = withInputSize(net, Math.ceil(net.input.height / 2), Math.ceil(net.input.width / 2));
    mapShapes(half); // throws when a layer's map would vanish
    return half;
  } catch {
    return net;
  }
}

/** Least squares y = X b for a few columns (normal equations, Gaussian elimination). */
export function leastSquares(rows: readonly (readonly number[])[], y: readonly number[]): number[] {
  const k = rows[0]!.length;
  const a = Array.from({ length: k }, (_, i) => Array.from({ length: k + 1 }, (_, j) =>
    rows.reduce((s, r, n) => s + r[i]! * (j < k ? r[j]! : y[n]!), 0)));
  for (let c = 0; c < k; c++) {
    let pivot = c;
    for (let r = c + 1; r < k; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[pivot]![c]!)) pivot = r;
    [a[c], a[pivot]] = [a[pivot]!, a[c]!];
    if (Math.abs(a[c]![c]!) < 1e-12) throw new Error('overhead fit: the probe steps do not determine the fit');
    for (let r = 0; r < k; r++) {
      if (r === c) continue;
      const f = a[r]![c]! / a[c]![c]!;
      for (let j = c; j <= k; j++) a[r]![j] = a[r]![j]! - f * a[c]![j]!;
    }
  }
  return a.map((row, i) => row[k]! / row[i]!);
}

interface StepTimes {
  readonly plan: TilePlan;
  /** Wall time of each timed step, ms. */
  readonly wallMs: readonly number[];
}

/**
 * Steps of `net` on one device through runDeviceStep and the compute engine training uses, with the
 * training command's initial weights and an image-like input (the elementwise passes' speed depends
 * on the data's signs). `warmups` untimed steps first: the wasm heap grows, XNNPACK sets up.
 */
async function timeSteps(net: Network, grid: { rows: number; cols: number }, grouping: string, threads: number, warmups: number, steps: number, request: ProfileRequest): Promise<StepTimes> {
  const groups = parseGrouping(grouping, net.layers.length);
  const plan = buildTilePlan({ net, grid, devices: 1, batch: net.hyper.batch, forwardGroups: groups, backwardGroups: groups });
  const maps = plan.maps;
  const random = seededRandom(5);
  const first = maps[0]!;
  const last = maps[maps.length - 1]!;
  const inputLayout = { region: wholeMap(first.height, first.width), batch: plan.batch, channels: first.channels };
  const outLayout = { region: wholeMap(last.height, last.width), batch: plan.batch, channels: last.channels };
  const input = fillUniform(new Float32Array(plan.batch * first.height * first.width * first.channels), random, 0, 1);
  const dOut = fillUniform(new Float32Array(plan.batch * last.height * last.width * last.channels), random, -0.01, 0.01);
  const runtime = await createDeviceRuntime({
    plan, rank: 0, params: initialParams(net, 1), threads, ...(request.backend ? { backend: request.backend } : {}),
    ...(request.workerScript ? { workerScript: request.workerScript } : {}),
  });
  try {
    await runtime.engine.loadParams();
    const [exchange] = createInMemoryCluster(1, plan.tileDevice);
    const inputs = {
      input: (_t: number, region: Region, into: Float32Array) => copySubRegion(input, inputLayout, into, { ...inputLayout, region }, region),
      outputGradient: async (_t: number, core: Region) => extractSubRegion(dOut, outLayout, core),
    };
    const wallMs: number[] = [];
    for (let s = 0; s < warmups + steps; s++) {
      const started = performance.now();
      await runDeviceStep(runtime, exchange!, inputs, { step: s, wantInputGradient: false });
      if (s >= warmups) wallMs.push(performance.now() - started);
    }
    return { plan, wallMs };
  } finally {
    await runtime.engine.close();
  }
}

async function overheadSample(net: Network, grid: { rows: number; cols: number }, grouping: string, threads: number, steps: number, request: ProfileRequest): Promise<OverheadSample> {
  const { plan, wallMs } = await timeSteps(net, grid, grouping, threads, 2, steps, request);
  // The fastest step: other processes on the machine only ever slow a step down.
  return { grid: `${grid.rows}x${grid.cols}`, grouping, ...stepWork(plan), stepMs: Math.min(...wallMs) };
}

/** The profile with another elementwise rate (for the calibration's predictions). */
const withElementwise = (profile: DeviceProfile, elementwiseGflops: number): DeviceProfile =>
  ({ ...profile, compute: { ...profile.compute, elementwiseGflops, workers: 1 } });

/**
 * The elementwise rate from each layer's passes timed at its tile (kernel-bench.ts timeElementwise),
 * weighted by the elements the cost model charges each layer at the whole map. Random data makes the
 * activation's branches mispredict more than training data does, and every layer is timed with the
 * re-normalisation a non-first layer of a backward window does: an upper bound of the passes' cost.
 */
function sequenceElementwise(net: Network, repeats: number): { gflops: number; shapes: number } {
  const maps = mapShapes(net);
  const batch = net.hyper.batch;
  const passes = new Map<string, ElementwiseTimings>();
  let weighted = 0;
  let weightedSeconds = 0;
  net.layers.forEach((layer, l) => {
    const previous = net.layers[l - 1];
    const tile = tileRead(layer, maps[l]!, maps[l + 1]!, batch, 2, 2);
    const spec = { layer, ...tile, previous: previous?.kind === 'conv' && previous.batchNormalize ? previous : null };
    const key = JSON.stringify(spec);
    const t = passes.get(key) ?? timeElementwise(spec, repeats);
    passes.set(key, t);
    const whole = tileRead(layer, maps[l]!, maps[l + 1]!, batch, 1, 1).read;
    const out = maps[l + 1]!;
    const elements = 3 * (whole.reduce((a, b) => a * b, 1) + (layer.kind === 'conv' ? 2 : 1) * batch * out.height * out.width * out.channels);
    weighted += elements;
    weightedSeconds += (elements / t.elements) * (t.forwardSeconds + t.backwardSeconds);
  });
  return { gflops: gflops(weighted, weightedSeconds), shapes: passes.size };
}

export async function measureProfile(request: ProfileRequest): Promise<ProfileMeasurement> {
  const started = performance.now();
  const { net, quick, log } = request;
  const repeats = quick ? 1 : 3;
  const backend = await initBackend(request.backend).catch((error: Error) => {
    throw new BackendUnavailableError(`the ${request.backend} backend cannot start here: ${error.message.split('\n')[0]}`);
  });
  for (const note of backend.notes) log(`note: ${note}`);
  log(`backend ${backend.name}; ${request.workers === 0 ? 'compute on the main thread' : `${request.workers} compute worker${request.workers > 1 ? 's' : ''}`}; ${quick ? 'quick: one timed run per op, tiles only' : `best of ${repeats} runs per op after a warm-up`}`);
  const maps = mapShapes(net);
  const batch = net.hyper.batch;
  const layerFlops = (l: number) => forwardFlops(net.layers[l]!, maps[l]!, maps[l + 1]!);

  // Conv rates per class.
  const conv: ConvClassMeasurement[] = [];
  const forRules: { inChannels: number; kernel: number; rates: RateSet; flops: number }[] = [];
  let parallelSpec: { spec: ConvBenchSpec; seconds: number; flops: number } | null = null;
  for (const c of convClasses(net)) {
    const l = c.layers.reduce((best, x) => (layerFlops(x) > layerFlops(best) ? x : best), c.layers[0]!);
    const layer = net.layers[l] as ConvLayer;
    const tile = tileRead(layer, maps[l]!, maps[l + 1]!, batch, 2, 2);
    const spec: ConvBenchSpec = { layer, ...tile };
    const t = timeConv(spec, repeats);
    const tileRates = rateSet(t, tile.read);
    const opSeconds = t.forwardSeconds + t.inputGradientSeconds + t.filterGradientSeconds;
    if (!parallelSpec || t.flops > parallelSpec.flops) parallelSpec = { spec, seconds: t.forwardSeconds + t.filterGradientSeconds, flops: t.flops };
    let whole: RateSet | null = null;
    const wholeRead = tileRead(layer, maps[l]!, maps[l + 1]!, batch, 1, 1);
    const wholeFlops = benchFlops(layer, wholeRead.read);
    const estimate = opSeconds * (wholeFlops / t.flops) * (1 + repeats);
    if (!quick && wholeFlops > t.flops && estimate <= WHOLE_MAP_BUDGET_SECONDS) {
      whole = rateSet(timeConv({ layer, ...wholeRead }, repeats), wholeRead.read);
    }
    conv.push({ inChannels: c.inChannels, kernel: c.kernel, layers: c.layers, layer: l, tile: tileRates, whole });
    forRules.push({ inChannels: c.inChannels, kernel: c.kernel, rates: tileRates, flops: t.flops });
    const fmt = (r: RateSet) => `${round3(r.forwardGflops)} / ${round3(r.inputGradientGflops)} / ${round3(r.filterGradientGflops)}`;
    log(`conv ${c.kernel}x${c.kernel} from ${c.inChannels} channels (layer${c.layers.length > 1 ? 's' : ''} ${c.layers.join(',')}): ` +
      `tile ${tile.read.slice(1).join('x')} ${fmt(tileRates)} GFLOP/s forward / input grad / filter grad` +
      (whole ? `; whole map ${fmt(whole)}` : quick || wholeFlops <= t.flops ? '' : `; whole map skipped (about ${estimate.toFixed(0)} s)`));
  }
  if (conv.length === 0) throw new Error(`${net.name} has no conv layer in its front: nothing to profile`);

  // Maxpool: every distinct maxpool layer at a tile, or a 2x2 pool of 32 channels when the front has none.
  const pools = new Map<string, number>();
  net.layers.forEach((layer, l) => {
    if (layer.kind === 'maxpool') {
      const key = `${layer.size}/${layer.stride}/${maps[l]!.channels}/${maps[l]!.height}`;
      if (!pools.has(key)) pools.set(key, l);
    }
  });
  const poolTimings: MaxpoolTimings[] = [];
  const synthetic: MaxpoolLayer = { kind: 'maxpool', size: 2, stride: 2, padBefore: 0, padTotal: 1 };
  if (pools.size === 0) poolTimings.push(timeMaxpool({ layer: synthetic, read: [batch, 64, 64, 32] }, repeats));
  for (const l of pools.values()) {
    const layer = net.layers[l] as MaxpoolLayer;
    poolTimings.push(timeMaxpool({ layer, read: tileRead(layer, maps[l]!, maps[l + 1]!, batch, 2, 2).read }, repeats));
  }
  const poolFlops = poolTimings.reduce((s, p) => s + p.flops, 0);
  const maxpool = {
    layers: [...pools.values()],
    forwardGflops: gflops(poolFlops, poolTimings.reduce((s, p) => s + p.forwardSeconds, 0)),
    backwardGflops: gflops(poolFlops, poolTimings.reduce((s, p) => s + p.backwardSeconds, 0)),
    synthetic: pools.size === 0,
  };
  log(`maxpool ${pools.size === 0 ? '(none in the front: a 64x64x32 2x2 pool)' : `layers ${maxpool.layers.join(',')}`}: forward ${round3(maxpool.forwardGflops)}, backward ${round3(maxpool.backwardGflops)} GFLOP/s (compares)`);
  // Fixed costs per task and per layer, through the scheduler and the compute engine.
  const probeThreads = Math.min(request.workers, 1);
  const probeNet = overheadNetwork(8);
  const samples: OverheadSample[] = [];
  for (const grid of [{ rows: 1, cols: 1 }, { rows: 2, cols: 2 }]) {
    for (const grouping of ['all', 'each']) samples.push(await overheadSample(probeNet, grid, grouping, probeThreads, quick ? 3 : 7, request));
  }
  const [fixedStepMs, taskMs, layerMs] = leastSquares(samples.map((s) => [1, s.tasks, s.layerPasses]), samples.map((s) => s.stepMs)) as [number, number, number];
  const overhead = { samples, fixedStepMs, taskOverheadMs: Math.max(0, taskMs), layerOverheadMs: Math.max(0, layerMs) };
  log(`overheads (${probeThreads === 0 ? 'inline' : 'one worker thread'}, ${samples.map((s) => `${s.grid} ${s.grouping} ${s.stepMs.toFixed(1)} ms`).join(', ')}): ` +
    `${overhead.taskOverheadMs.toFixed(3)} ms per task, ${overhead.layerOverheadMs.toFixed(3)} ms per layer, ${fixedStepMs.toFixed(2)} ms per step`);

  // Elementwise rate. Default: calibrated so that the cost model, with every rate measured above,
  // reproduces real steps of the front (as it is when those are short, else at half the input,
  // about a 2x2 tile's maps: calibrationInput; groupings
  // `each` and `all`, which differ in the passes a backward window re-runs). Quick: timed pass by pass.
  const provisional = parseProfile({
    name: 'provisional', compute: {
      conv: convRules(forRules), maxpoolForwardGflops: maxpool.forwardGflops, maxpoolBackwardGflops: maxpool.backwardGflops, elementwiseGflops: 1,
      layerOverheadMs: overhead.layerOverheadMs, taskOverheadMs: overhead.taskOverheadMs, workers: 1, parallelEfficiency: 1,
    }, link: request.link, memory: { runtimeMiB: 0 },
  }, 'the provisional profile');
  let elementwise: ProfileMeasurement['elementwise'] | null = null;
  if (!quick) {
    const calibrationNet = calibrationInput(net, provisional);
    const steps: CalibrationStep[] = [];
    for (const grouping of ['each', 'all']) {
      const { plan, wallMs } = await timeSteps(calibrationNet, { rows: 1, cols: 1 }, grouping, probeThreads, 1, 2, request);
      const measuredSeconds = (Math.min(...wallMs) - Math.max(0, fixedStepMs)) / 1000;
      const withoutElementwise = predictStep(plan, withElementwise(provisional, 1e12)).computeSeconds;
      const elements = (predictStep(plan, withElementwise(provisional, 1)).computeSeconds - withoutElementwise) * GIGA;
      steps.push({ grouping, input: `${calibrationNet.input.height}x${calibrationNet.input.width}`, measuredSeconds, withoutElementwiseSeconds: withoutElementwise, elements });
    }
    const rest = steps.reduce((sum, c) => sum + c.measuredSeconds - c.withoutElementwiseSeconds, 0);
    const total = steps.reduce((sum, c) => sum + c.measuredSeconds, 0);
    const describeSteps = steps.map((c) => `${c.grouping} ${c.measuredSeconds.toFixed(2)} s measured, ${c.withoutElementwiseSeconds.toFixed(2)} s without them`).join('; ');
    // When the kernels alone explain the steps (their rates, measured on tiles, already carry the
    // passes' time), the passes get at most the residual: timing them on top would predict the
    // measured steps too slow (by 40% at 224x224 here).
    const residual = Math.max(rest, 0.02 * total);
    elementwise = { method: 'calibrated', gflops: steps.reduce((sum, c) => sum + c.elements, 0) / residual / GIGA, steps };
    log(`elementwise passes, calibrated on steps of ${net.name} ${steps[0]!.input} (${describeSteps})` +
      `${rest > 0.02 * total ? '' : '; the kernels alone explain the steps, the passes get 2% of them'}: ${round3(elementwise.gflops)} G elements/s`);
  }
  if (!elementwise) {
    const timed = sequenceElementwise(net, repeats);
    elementwise = { method: 'timed', gflops: timed.gflops, steps: [] };
    log(`elementwise passes timed one by one (padding, batch norm and activation, buffer copies; ${timed.shapes} layer shapes): ${round3(elementwise.gflops)} G elements/s`);
  }

  // Parallel efficiency: the largest conv class's tile work on one worker alone, then on every worker at once.
  let parallel: ProfileMeasurement['parallel'] = null;
  if (request.workers > 1) {
    const spec = parallelSpec!;
    const runs = Math.max(1, Math.ceil((quick ? 0.15 : 0.6) / Math.max(spec.seconds, 1e-4)));
    const engine = await WorkerEngine.start({
      threads: request.workers, net: probeNet, batch: 1, ...(request.backend ? { backend: request.backend } : {}),
      // Bench work only (no tile tasks): nothing to keep.
      paramsBuffer: new SharedArrayBuffer(sharedParamsFloats(probeNet) * 4), arenaBuffers: [], keepFilters: false, ...(request.workerScript ? { script: request.workerScript } : {}),
    });
    try {
      let alone = Infinity;
      let together: number[] = [];
      // Alternated, best of each: noise from other processes only ever slows a run down.
      for (let r = 0; r < (quick ? 1 : 2); r++) {
        alone = Math.min(alone, (await engine.benchmarkConv(spec.spec, runs, 1))[0]!);
        const all = await engine.benchmarkConv(spec.spec, runs, request.workers);
        if (together.length === 0 || Math.max(...all) < Math.max(...together)) together = all;
      }
      const mean = together.reduce((a, b) => a + b, 0) / together.length;
      parallel = { workers: request.workers, aloneSeconds: alone, togetherSeconds: together, efficiency: Math.min(1, Math.max(0.01, alone / mean)) };
      log(`parallel: the same conv work takes ${alone.toFixed(3)} s on one worker alone, ${together.map((s) => s.toFixed(3)).join(' / ')} s on ${request.workers} at once: efficiency ${parallel.efficiency.toFixed(2)}`);
    } finally {
      await engine.close();
    }
  }

  const runtimeMiB = request.runtimeBytes / (1024 * 1024);
  const workers = Math.max(1, request.workers);
  const cpu = cpus();
  const description = [
    `measured by edge profile on ${hostname()} (${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} CPUs), node ${process.version}, ${backend.name} backend, ` +
      `${workers} worker${workers > 1 ? 's' : ''}, ${new Date().toISOString().slice(0, 10)}${quick ? ', quick' : ''}`,
    `conv rates at a 2x2-grid tile of each class's largest layer of ${net.name} ${net.input.height}x${net.input.width} batch ${batch}`,
    workers > 1 ? `parallel efficiency measured on ${workers} workers` : 'parallel efficiency not measured (1 worker)',
    request.linkNote,
  ].join('; ');
  const raw = {
    name: request.name ?? `measured-${hostname()}`,
    description,
    compute: {
      conv: convRules(forRules),
      maxpoolForwardGflops: round3(maxpool.forwardGflops),
      maxpoolBackwardGflops: round3(maxpool.backwardGflops),
      elementwiseGflops: round3(elementwise.gflops),
      layerOverheadMs: round3(overhead.layerOverheadMs),
      taskOverheadMs: round3(overhead.taskOverheadMs),
      workers,
      parallelEfficiency: parallel ? round3(parallel.efficiency) : 1,
    },
    link: request.link,
    memory: { runtimeMiB: round3(runtimeMiB) },
  };
  const profile = parseProfile(raw, 'the measured profile');
  return { profile, backend: backend.name, conv, maxpool, elementwise, overhead, parallel, runtimeMiB, seconds: (performance.now() - started) / 1000 };
}
