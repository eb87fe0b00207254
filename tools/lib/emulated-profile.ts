// The planner's profile of an emulated device, measured rather than assumed:
// 1. `edge profile` on this machine at the benchmark's input size (whole cores: kernels timed under a
//    CFS quota catch unthrottled bursts and vary 10x);
// 2. its rates scaled to the device's CPU quota (a busy thread gets `cpus` of a core on average over
//    the quota periods of a step), its fixed costs divided by it, and the shaped link's payload rate;
// 3. the elementwise rate calibrated as `edge profile` calibrates it, but on real steps of the
//    emulated device at the real input (1x1 grid, `all` and `each`): whatever of a step the conv and
//    maxpool kernels do not explain (batch norm and activation loops, copies, per-step work on the
//    weights) is charged per element so that the model reproduces those steps; where the kernels
//    alone take longer than those steps, every rate is scaled by one factor instead.
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
  readonly grouping: string;
  /** Mean steady step of one emulated device, 1x1 grid. */
  readonly measuredSeconds: number;
}

export interface Calibration {
  readonly runs: readonly (CalibrationRun & { readonly kernelSeconds: number; readonly elements: number })[];
  /**
   * `elementwise`: the time the kernels leave unexplained is charged per element. `speed`: the
   * kernels alone take longer than the measured steps (the quota gave more than the scaled profile
   * says), so every rate is multiplied by `speedFactor` for the profile to reproduce the steps.
   */
  readonly method: 'elementwise' | 'speed';
  readonly elementwiseGflops: number;
  readonly speedFactor: number;
}

/** Predicted 1-device 1x1 step of `grouping` under `profile` (a file). */
export function predictOne(edge: string, profileFile: string, input: string, grouping: string): number {
  const run = spawnSync(process.execPath, [edge, 'plan', '--devices', '1', '--input', input, '--profile', profileFile, '--grid', '1x1',
    '--forward-groups', grouping, '--backward-groups', grouping, '--memory-limit', '64G', '--json'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`edge plan failed: ${run.stderr.slice(-1000)}`);
  return (JSON.parse(run.stdout) as { best: { stepSeconds: number } }).best.stepSeconds;
}

/**
 * The elementwise rate with which the model predicts the runs' total: elements the model charges
 * (its prediction at 1 G elements/s less that with free elementwise passes) over the time the
 * kernels leave unexplained. The sum over `all` and `each`, as `edge profile` does.
 */
export function calibrateToSteps(edge: string, profile: Json, input: string, runs: readonly CalibrationRun[]): Calibration {
  const scratch = mkdtempSync(join(tmpdir(), 'edgefuse-calibration-'));
  const withRate = (gflops: number): string => {
    const file = join(scratch, `calibration-${gflops}.json`);
    writeFileSync(file, JSON.stringify({ ...profile, compute: { ...(profile.compute as Json), elementwiseGflops: gflops } }));
    return file;
  };
  const free = withRate(1e12);
  const unit = withRate(1);
  const measured = runs.map((r) => {
    const kernelSeconds = predictOne(edge, free, input, r.grouping);
    return { ...r, kernelSeconds, elements: (predictOne(edge, unit, input, r.grouping) - kernelSeconds) * 1e9 };
  });
  const rest = measured.reduce((sum, r) => sum + r.measuredSeconds - r.kernelSeconds, 0);
  const elements = measured.reduce((sum, r) => sum + r.elements, 0);
  if (rest > 0) return { runs: measured, method: 'elementwise', elementwiseGflops: Number((elements / rest / 1e9).toPrecision(3)), speedFactor: 1 };
  const rate = (profile.compute as Json).elementwiseGflops;
  if (typeof rate !== 'number' || !(rate > 0)) throw new Error(`calibration: the profile has no elementwise rate (${String(rate)})`);
  const speedFactor = speedFactorFor(measured.map((r) => ({ measuredSeconds: r.measuredSeconds, predictedSeconds: r.kernelSeconds + r.elements / (rate * 1e9) })));
  return { runs: measured, method: 'speed', elementwiseGflops: Number((rate * speedFactor).toPrecision(3)), speedFactor };
}

/** The factor on every rate that makes the predicted total of the runs their measured total. */
export function speedFactorFor(runs: readonly { readonly measuredSeconds: number; readonly predictedSeconds: number }[]): number {
  const measured = runs.reduce((sum, r) => sum + r.measuredSeconds, 0);
  const predicted = runs.reduce((sum, r) => sum + r.predictedSeconds, 0);
  if (!(measured > 0) || !(predicted > 0)) throw new Error(`calibration: no time to fit (${JSON.stringify(runs)})`);
  return Number((predicted / measured).toPrecision(3));
}
