// SGD with momentum and weight decay exactly as Darknet's update_convolutional_layer applies it, and
// Darknet's learning-rate policies. Darknet accumulates "updates" as the negative gradient of the
// loss summed over the batch; momentum scales the updates after each step.
import type { LearningRatePolicy, NetHyper } from '../model/layers.js';
import type { ConvParams, FrontParams } from '../model/weights.js';

export interface WeightGradient {
  readonly dFilter: Float32Array;
  readonly dBiases: Float32Array;
  readonly dScales?: Float32Array;
}

/** Momentum buffers, shaped like the parameters they update. */
export interface OptimizerState {
  readonly updates: ({ filter: Float32Array; biases: Float32Array; scales?: Float32Array } | null)[];
}

export function newOptimizerState(params: FrontParams): OptimizerState {
  return {
    updates: params.map((p) =>
      p ? { filter: new Float32Array(p.filter.length), biases: new Float32Array(p.biases.length), ...(p.bn ? { scales: new Float32Array(p.bn.scales.length) } : {}) } : null),
  };
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

/** Applies one step in place. Every device runs this on the same summed gradients, so weights agree. */
export function applyUpdate(params: FrontParams, state: OptimizerState, gradients: readonly (WeightGradient | null)[], hyper: NetHyper, batchNumber: number): number {
  const rate = learningRate(hyper.learningRate, hyper.schedule, batchNumber);
  params.forEach((p: ConvParams | null, l) => {
    const g = gradients[l];
    const u = state.updates[l];
    if (!p || !g || !u) return;
    sgd(p.biases, u.biases, g.dBiases, rate, hyper, false);
    if (p.bn && g.dScales && u.scales) sgd(p.bn.scales, u.scales, g.dScales, rate, hyper, false);
    sgd(p.filter, u.filter, g.dFilter, rate, hyper, true);
  });
  return rate;
}
