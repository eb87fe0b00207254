// The planner's profile of an emulated device, measured rather than assumed:
// 1. `edge profile` on this machine at the benchmark's input size (whole cores: kernels timed under a
//    CFS quota catch unthrottled bursts and vary 10x);
// 2. its rates scaled to the device's CPU quota (a busy thread gets `cpus` of a core on average over
//    the quota periods of a step), its fixed costs divided by it, and the shaped link's payload rate;
// 3. calibrated on real steps of one emulated device at the real input: 1x1 `all` and `each`, and a
//    2x2 grid `each` (four tiles, no network: what tiling costs a device). By least squares over
//    those steps, one factor on every rate of the profile (the kernels at the shapes the runtime
//    computes, the elementwise passes, under the quota) and a cost per tile layer pass (per-tile
//    work the rates miss: smaller GEMMs, filter rotations and float64 sums per tile, strip copies,
//    hand-offs between the scheduler and the compute thread);
// 4. the link's latency (paid once per exchange point and per ring round: grouping/traffic.ts) fitted on steps of two emulated devices exchanging at every
//    layer (1x2 `each`): an idle ping measures 0.2 ms, but a device whose compute thread is using
//    its quota answers a message only when its scheduler thread next gets CPU (fitLatency).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Json = Record<string, unknown>;

/** Rates (`...Gflops`) times `cpus`, fixed costs (`...OverheadMs`) divided by it. */
export function scaleToQuota(compute: Json, cpus: number): Json {
  const scale = (o: Json): Json => Object.fromEntries(Object.entries(o).map(([k, v]) =>
    [k, typeof v === 'number' && /Gflops$/.test(k) ? v * cpus : typeof v === 'number' && /OverheadMs$/.test(k) ? v / cpus : v]));
  return { ...scale(compute), conv: (compute.conv as Json[]).map(scale) };
}

export interface CalibrationRun {
  /** "RxC" */
  readonly grid: string;
  readonly grouping: string;
  /** Steady step of one emulated device. */
  readonly measuredSeconds: number;
}

/** A calibration run as the model sees it: its step on the profile, and what a layer pass adds. */
export interface ModelledRun extends CalibrationRun {
  /** Predicted seconds on the uncalibrated profile. */
  readonly profileSeconds: number;
  /** Layer passes on the device's critical path (what one more ms of layerOverheadMs adds, in ms). */
  readonly layerPasses: number;
}

export interface Calibration {
  readonly runs: readonly (ModelledRun & { readonly predictedSeconds: number })[];
  /** Every rate (`...Gflops`) is multiplied by it, every fixed cost divided (scaleToQuota). */
  readonly speedFactor: number;
  /** Then added to the profile's layerOverheadMs. */
  readonly extraLayerOverheadMs: number;
}

/** Predicted step of `grid` and `grouping` on `devices` devices under `profile` (a file). */
export function predictOne(edge: string, profileFile: string, input: string, grid: string, grouping: string, devices = 1): number {
  const run = spawnSync(process.execPath, [edge, 'plan', '--devices', String(devices), '--input', input, '--profile', profileFile, '--grid', grid,
    '--forward-groups', grouping, '--backward-groups', grouping, '--memory-limit', '64G', '--json'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`edge plan failed: ${run.stderr.slice(-1000)}`);
  return (JSON.parse(run.stdout) as { best: { stepSeconds: number } }).best.stepSeconds;
}

export interface StepFit {
  /** measured = profileSeconds / speedFactor + perLayerPass x layerPasses */
  readonly speedFactor: number;
  /** Seconds, >= 0. */
  readonly perLayerPass: number;
}

/**
 * Least squares of measured = slowdown x profileSeconds + perLayerPass x layerPasses over the runs,
 * with perLayerPass >= 0 (when negative, or when the runs cannot tell the two apart, it is 0 and the
 * slowdown alone makes the predicted total the measured total).
 */
export function fitSteps(runs: readonly ModelledRun[]): StepFit {
  const dot = (x: readonly number[], y: readonly number[]) => x.reduce((sum, v, i) => sum + v * y[i]!, 0);
  const m = runs.map((r) => r.measuredSeconds);
  const base = runs.map((r) => r.profileSeconds);
  const p = runs.map((r) => r.layerPasses);
  const [bb, pp, bp] = [dot(base, base), dot(p, p), dot(base, p)];
  const det = bb * pp - bp * bp;
  if (det > 1e-9 * bb * pp) {
    const slowdown = (pp * dot(base, m) - bp * dot(p, m)) / det;
    const perLayerPass = (bb * dot(p, m) - bp * dot(base, m)) / det;
    if (slowdown > 0 && perLayerPass >= 0) return { speedFactor: Number((1 / slowdown).toPrecision(3)), perLayerPass };
  }
  return { speedFactor: speedFactorFor(runs.map((r) => ({ measuredSeconds: r.measuredSeconds, predictedSeconds: r.profileSeconds }))), perLayerPass: 0 };
}

/**
 * Fits the speed factor and an extra per-layer-pass overhead so that the model reproduces the runs
 * (fitSteps); the layer passes the model charges are read off its prediction at +1 ms per pass.
 */
export function calibrateToSteps(edge: string, profile: Json, input: string, runs: readonly CalibrationRun[]): Calibration {
  const scratch = mkdtempSync(join(tmpdir(), 'edgefuse-calibration-'));
  const compute = profile.compute as Json;
  const layerOverheadMs = compute.layerOverheadMs;
  if (typeof layerOverheadMs !== 'number') throw new Error(`calibration: the profile has no layerOverheadMs (${String(layerOverheadMs)})`);
  const write = (name: string, changes: Json): string => {
    const file = join(scratch, `calibration-${name}.json`);
    writeFileSync(file, JSON.stringify({ ...profile, compute: { ...compute, ...changes } }));
    return file;
  };
  let modelled: ModelledRun[];
  try {
    const asIs = write('as-is', {});
    const slower = write('pass', { layerOverheadMs: layerOverheadMs + 1 });
    modelled = runs.map((r) => {
      const profileSeconds = predictOne(edge, asIs, input, r.grid, r.grouping);
      return { ...r, profileSeconds, layerPasses: (predictOne(edge, slower, input, r.grid, r.grouping) - profileSeconds) * 1e3 };
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const fit = fitSteps(modelled);
  const extraLayerOverheadMs = Number((fit.perLayerPass * 1e3).toPrecision(3));
  return {
    runs: modelled.map((r) => ({ ...r, predictedSeconds: r.profileSeconds / fit.speedFactor + (r.layerPasses * extraLayerOverheadMs) / 1e3 })),
    speedFactor: fit.speedFactor,
    extraLayerOverheadMs,
  };
}

/** The factor on every rate that makes the predicted total of the runs their measured total. */
export function speedFactorFor(runs: readonly { readonly measuredSeconds: number; readonly predictedSeconds: number }[]): number {
  const measured = runs.reduce((sum, r) => sum + r.measuredSeconds, 0);
  const predicted = runs.reduce((sum, r) => sum + r.predictedSeconds, 0);
  if (!(measured > 0) || !(predicted > 0)) throw new Error(`calibration: no time to fit (${JSON.stringify(runs)})`);
  return Number((predicted / measured).toPrecision(3));
}

/**
 * The x in [low, high] where the non-decreasing f(x) reaches `target`, to within `tolerance`: low
 * when f(low) is already at or above it, high when f(high) is still below it.
 */
export function solveIncreasing(f: (x: number) => number, target: number, low: number, high: number, tolerance: number): number {
  if (f(low) >= target) return low;
  if (f(high) <= target) return high;
  let [a, b] = [low, high];
  while (b - a > tolerance) {
    const mid = (a + b) / 2;
    if (f(mid) < target) a = mid;
    else b = mid;
  }
  return (a + b) / 2;
}

export interface LatencyRun extends CalibrationRun {
  readonly devices: number;
}

export interface LatencyFit {
  readonly run: LatencyRun & { readonly predictedAtProfileLatency: number; readonly predictedSeconds: number };
  /** The profile's latency (an idle ping) and the fitted one, in ms. */
  readonly profileLatencyMs: number;
  readonly latencyMs: number;
}

/** Largest latency the fit considers (ms): far beyond it something other than latency is wrong. */
const MAX_FITTED_LATENCY_MS = 50;

/**
 * The link latency that makes the model predict `run` (a multi-device step) as
 * measured, everything else as calibrated; never below the profile's own (an idle ping).
 */
export function fitLatency(edge: string, profile: Json, input: string, run: LatencyRun): LatencyFit {
  const scratch = mkdtempSync(join(tmpdir(), 'edgefuse-latency-'));
  const link = profile.link as Json;
  const profileLatencyMs = link.latencyMs;
  if (typeof profileLatencyMs !== 'number') throw new Error(`calibration: the profile has no link latencyMs (${String(profileLatencyMs)})`);
  try {
    const predict = (latencyMs: number): number => {
      const file = join(scratch, `latency-${latencyMs}.json`);
      writeFileSync(file, JSON.stringify({ ...profile, link: { ...link, latencyMs } }));
      return predictOne(edge, file, input, run.grid, run.grouping, run.devices);
    };
    const fitted = solveIncreasing(predict, run.measuredSeconds, profileLatencyMs, MAX_FITTED_LATENCY_MS, 0.05);
    const latencyMs = Number(fitted.toPrecision(3));
    return { run: { ...run, predictedAtProfileLatency: predict(profileLatencyMs), predictedSeconds: predict(latencyMs) }, profileLatencyMs, latencyMs };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
