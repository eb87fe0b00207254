// SGD with momentum and weight decay exactly as Darknet's update_convolutional_layer applies it, Adam
// as its GPU path applies it (adam=1), and Darknet's learning-rate policies. Darknet accumulates
// "updates" as the negative gradient of the loss summed over the batch; momentum scales the updates
// after each step.
import type { AdamHyper, LearningRatePolicy, NetHyper } from '../model/layers.js';
import type { ConvParams, FrontParams } from '../model/weights.js';

export interface WeightGradient {
  readonly dFilter: Float32Array;
  readonly dBiases: Float32Array;
  readonly dScales?: Float32Array;
}

export type LayerBuffers = { filter: Float32Array; biases: Float32Array; scales?: Float32Array } | null;

/**
 * Buffers shaped like the parameters they update: SGD's momentum in `updates`; with Adam its first
 * moments in `updates` and its second moments in `squares`.
 */
export interface OptimizerState {
  readonly updates: LayerBuffers[];
  readonly squares?: LayerBuffers[];
}

const zerosLike = (params: FrontParams): LayerBuffers[] =>
  params.map((p) =>
    p ? { filter: new Float32Array(p.filter.length), biases: new Float32Array(p.biases.length), ...(p.bn ? { scales: new Float32Array(p.bn.scales.length) } : {}) } : null);

export function newOptimizerState(params: FrontParams, hyper?: Pick<NetHyper, 'adam'>): OptimizerState {
  return { updates: zerosLike(params), ...(hyper?.adam ? { squares: zerosLike(params) } : {}) };
}

/** Every buffer of a state in a fixed order (per layer: biases, scales, filter; then Adam's squares). */
export function stateBuffers(state: OptimizerState): Float32Array[] {
  const of = (all: readonly LayerBuffers[]): Float32Array[] => all.flatMap((u) => (u ? [u.biases, ...(u.scales ? [u.scales] : []), u.filter] : []));
  return [...of(state.updates), ...(state.squares ? of(state.squares) : [])];
}

/** Darknet's get_current_rate for batch number `batch` (the number of updates done so far). */
export function learningRate(base: number, s: LearningRatePolicy, batch: number): number {
  if (s.burnIn > 0 && batch < s.burnIn) return base * Math.pow(batch / s.burnIn, s.power);
  if (s.policy === 'steps') {
    let rate = base;
    s.steps.forEach((at, i) => {
      if (at <= batch) rate *= s.scales[i]!;
    });
    return rate;
  }
  if (s.policy === 'poly') return base * Math.pow(1 - batch / s.maxBatches, s.power);
  return base;
}

/** updates -= g; [weights only] updates -= decay * batch * w; w += rate / batch * updates; updates *= momentum. */
function sgd(w: Float32Array, u: Float32Array, g: Float32Array, rate: number, hyper: NetHyper, decay: boolean): void {
  const step = rate / hyper.batch;
  const decayTerm = decay ? hyper.decay * hyper.batch : 0;
  for (let i = 0; i < w.length; i++) {
    const update = u[i]! - g[i]! - decayTerm * w[i]!;
    w[i] = w[i]! + step * update;
    u[i] = hyper.momentum * update;
  }
}

/**
 * Darknet's adam_update_gpu at update number t (1-based): d = -g - decay * batch * w (every
 * parameter kind is decayed, as there); m = B1 m + (1 - B1) d; v = B2 v + (1 - B2) d^2;
 * w += rate * m^ / (sqrt(v^) + eps) with the bias-corrected m^ = m / (1 - B1^t), v^ = v / (1 - B2^t).
 * The rate is not divided by the batch: Adam is invariant to the gradient's scale.
 */
function adam(w: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, rate: number, hyper: NetHyper, a: AdamHyper, t: number): void {
  const decayTerm = hyper.decay * hyper.batch;
  const firstCorrection = 1 - Math.pow(a.b1, t);
  const secondCorrection = 1 - Math.pow(a.b2, t);
  for (let i = 0; i < w.length; i++) {
    const d = -g[i]! - decayTerm * w[i]!;
    m[i] = a.b1 * m[i]! + (1 - a.b1) * d;
    v[i] = a.b2 * v[i]! + (1 - a.b2) * d * d;
    w[i] = w[i]! + (rate * (m[i]! / firstCorrection)) / (Math.sqrt(v[i]! / secondCorrection) + a.eps);
  }
}

/** Applies one step in place. Every device runs this on the same summed gradients, so weights agree. */
export function applyUpdate(params: FrontParams, state: OptimizerState, gradients: readonly (WeightGradient | null)[], hyper: NetHyper, batchNumber: number): number {
  const rate = learningRate(hyper.learningRate, hyper.schedule, batchNumber);
  if (hyper.adam && !state.squares) throw new Error('the optimizer state has no second moments: create it with newOptimizerState(params, hyper) for adam=1');
  params.forEach((p: ConvParams | null, l) => {
    const g = gradients[l];
    const u = state.updates[l];
    if (!p || !g || !u) return;
    const v = state.squares?.[l];
    if (hyper.adam && v) {
      const t = batchNumber + 1;
      adam(p.filter, u.filter, v.filter, g.dFilter, rate, hyper, hyper.adam, t);
      adam(p.biases, u.biases, v.biases, g.dBiases, rate, hyper, hyper.adam, t);
      if (p.bn && g.dScales && u.scales && v.scales) adam(p.bn.scales, u.scales, v.scales, g.dScales, rate, hyper, hyper.adam, t);
      return;
    }
    sgd(p.biases, u.biases, g.dBiases, rate, hyper, false);
    if (p.bn && g.dScales && u.scales) sgd(p.bn.scales, u.scales, g.dScales, rate, hyper, false);
    sgd(p.filter, u.filter, g.dFilter, rate, hyper, true);
  });
  return rate;
}
