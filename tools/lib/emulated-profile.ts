// The planner's profile of an emulated device, measured rather than assumed:
// 1. `edge profile` on this machine at the benchmark's input size (whole cores: kernels timed under a
//    CFS quota catch unthrottled bursts and vary 10x);
// 2. its rates scaled to the device's CPU quota (a busy thread gets `cpus` of a core on average over
//    the quota periods of a step), its fixed costs divided by it, and the shaped link's payload rate;
// 3. calibrated on real steps of one emulated device at the real input: 1x1 `all` and `each`, and a
//    2x2 grid `each` (four tiles, no network: what tiling costs a device). Whatever of those steps
//    the conv and maxpool kernels do not explain is split, by least squares, into a cost per element
//    of the elementwise passes (batch norm and activation loops, copies) and a cost per tile layer
//    pass (per-tile work the kernels' rates miss: smaller GEMMs, filter rotations and float64 sums
//    per tile, strip copies, hand-offs between the scheduler and the compute thread); where the
//    kernels alone take longer than those steps, every rate is scaled by one factor instead.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
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

/** A calibration run as the model sees it: the kernels' seconds, and what an element and a layer pass add. */
export interface ModelledRun extends CalibrationRun {
  readonly kernelSeconds: number;
  /** Elementwise elements the model charges. */
  readonly elements: number;
  /** Layer passes on the device's critical path (what one more ms of layerOverheadMs adds, in ms). */
  readonly layerPasses: number;
}

export interface Calibration {
  readonly runs: readonly (ModelledRun & { readonly predictedSeconds: number })[];
  /**
   * `fit`: the time the kernels leave unexplained is charged per element and per layer pass.
   * `speed`: the kernels alone take longer than the measured steps (the quota gave more than the
   * scaled profile says), so every rate is multiplied by `speedFactor`.
   */
  readonly method: 'fit' | 'speed';
  readonly elementwiseGflops: number;
  /** Added to the profile's layerOverheadMs. */
  readonly extraLayerOverheadMs: number;
  readonly speedFactor: number;
}

/** Predicted 1-device step of `grid` and `grouping` under `profile` (a file). */
export function predictOne(edge: string, profileFile: string, input: string, grid: string, grouping: string): number {
  const run = spawnSync(process.execPath, [edge, 'plan', '--devices', '1', '--input', input, '--profile', profileFile, '--grid', grid,
    '--forward-groups', grouping, '--backward-groups', grouping, '--memory-limit', '64G', '--json'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`edge plan failed: ${run.stderr.slice(-1000)}`);
  return (JSON.parse(run.stdout) as { best: { stepSeconds: number } }).best.stepSeconds;
}

export interface OverheadFit {
  /** Seconds per elementwise element and per layer pass, both >= 0. */
  readonly perElement: number;
  readonly perLayerPass: number;
}

/**
 * Least squares of measured - kernel = perElement x elements + perLayerPass x layerPasses over the
 * runs, with both costs kept non-negative (a negative one is fixed at 0 and the other refitted).
 */
export function fitOverheads(runs: readonly ModelledRun[]): OverheadFit {
  const rest = runs.map((r) => r.measuredSeconds - r.kernelSeconds);
  const dot = (x: readonly number[], y: readonly number[]) => x.reduce((sum, v, i) => sum + v * y[i]!, 0);
  const e = runs.map((r) => r.elements);
  const p = runs.map((r) => r.layerPasses);
  const one = (x: readonly number[]) => (dot(x, x) > 0 ? Math.max(0, dot(x, rest) / dot(x, x)) : 0);
  const [ee, pp, ep] = [dot(e, e), dot(p, p), dot(e, p)];
  const det = ee * pp - ep * ep;
  if (det > 1e-12 * ee * pp) {
    const perElement = (pp * dot(e, rest) - ep * dot(p, rest)) / det;
    const perLayerPass = (ee * dot(p, rest) - ep * dot(e, rest)) / det;
    if (perElement >= 0 && perLayerPass >= 0) return { perElement, perLayerPass };
  }
  // On the boundary: the better of the two one-cost fits.
  const residual = (a: number, b: number) => rest.reduce((sum, r, i) => sum + (r - a * e[i]! - b * p[i]!) ** 2, 0);
  const byElement = { perElement: one(e), perLayerPass: 0 };
  const byPass = { perElement: 0, perLayerPass: one(p) };
  return residual(byElement.perElement, 0) <= residual(0, byPass.perLayerPass) ? byElement : byPass;
}

/**
 * Fits the elementwise rate and an extra per-layer-pass overhead so that the model reproduces the
 * runs (fitOverheads); the elements and layer passes the model charges are read off its predictions
 * at changed rates (1 G elements/s against free elementwise passes; +1 ms per layer pass).
 */
export function calibrateToSteps(edge: string, profile: Json, input: string, runs: readonly CalibrationRun[]): Calibration {
  const scratch = mkdtempSync(join(tmpdir(), 'edgefuse-calibration-'));
  const compute = profile.compute as Json;
  const layerOverheadMs = compute.layerOverheadMs;
  if (typeof layerOverheadMs !== 'number') throw new Error(`calibration: the profile has no layerOverheadMs (${String(layerOverheadMs)})`);
  const variant = (name: string, changes: Json): string => {
    const file = join(scratch, `calibration-${name}.json`);
    writeFileSync(file, JSON.stringify({ ...profile, compute: { ...compute, ...changes } }));
    return file;
  };
  const free = variant('free', { elementwiseGflops: 1e12 });
  const unit = variant('unit', { elementwiseGflops: 1 });
  const slower = variant('pass', { elementwiseGflops: 1e12, layerOverheadMs: layerOverheadMs + 1 });
  const modelled: ModelledRun[] = runs.map((r) => {
    const kernelSeconds = predictOne(edge, free, input, r.grid, r.grouping);
    return {
      ...r, kernelSeconds,
      elements: (predictOne(edge, unit, input, r.grid, r.grouping) - kernelSeconds) * 1e9,
      layerPasses: (predictOne(edge, slower, input, r.grid, r.grouping) - kernelSeconds) * 1e3,
    };
  });
  const fit = fitOverheads(modelled);
  if (fit.perElement > 0 || fit.perLayerPass > 0) {
    const elementwiseGflops = fit.perElement > 0 ? Number((1 / fit.perElement / 1e9).toPrecision(3)) : 1e12;
    const extraLayerOverheadMs = Number((fit.perLayerPass * 1e3).toPrecision(3));
    const predicted = (r: ModelledRun) => r.kernelSeconds + r.elements / (elementwiseGflops * 1e9) + (r.layerPasses * extraLayerOverheadMs) / 1e3;
    return { runs: modelled.map((r) => ({ ...r, predictedSeconds: predicted(r) })), method: 'fit', elementwiseGflops, extraLayerOverheadMs, speedFactor: 1 };
  }
  const rate = compute.elementwiseGflops;
  if (typeof rate !== 'number' || !(rate > 0)) throw new Error(`calibration: the profile has no elementwise rate (${String(rate)})`);
  const before = modelled.map((r) => ({ ...r, predictedSeconds: r.kernelSeconds + r.elements / (rate * 1e9) }));
  const speedFactor = speedFactorFor(before);
  return { runs: before.map((r) => ({ ...r, predictedSeconds: r.predictedSeconds / speedFactor })), method: 'speed', elementwiseGflops: Number((rate * speedFactor).toPrecision(3)), extraLayerOverheadMs: 0, speedFactor };
}

/** The factor on every rate that makes the predicted total of the runs their measured total. */
export function speedFactorFor(runs: readonly { readonly measuredSeconds: number; readonly predictedSeconds: number }[]): number {
  const measured = runs.reduce((sum, r) => sum + r.measuredSeconds, 0);
  const predicted = runs.reduce((sum, r) => sum + r.predictedSeconds, 0);
  if (!(measured > 0) || !(predicted > 0)) throw new Error(`calibration: no time to fit (${JSON.stringify(runs)})`);
  return Number((predicted / measured).toPrecision(3));
}
