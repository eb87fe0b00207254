// The optimizer against Darknet's update rules worked by hand: SGD with momentum (update_convolutional_layer)
// and Adam (adam_update_gpu, adam=1), plus the [net] keys that choose them.
import t from 'tap';
import { parseCfg } from '../../src/model/cfg.js';
import type { NetHyper } from '../../src/model/layers.js';
import type { FrontParams } from '../../src/model/weights.js';
import { applyUpdate, newOptimizerState, stateBuffers } from '../../src/train/optimizer.js';

const NO_SCHEDULE = { policy: 'constant', steps: [], scales: [], power: 4, maxBatches: 0, burnIn: 0 } as const;
const HYPER: NetHyper = { batch: 2, learningRate: 0.01, momentum: 0.9, decay: 0.0005, schedule: NO_SCHEDULE };
const ADAM: NetHyper = { ...HYPER, adam: { b1: 0.9, b2: 0.999, eps: 1e-7 } };

/** One conv layer with a BN scale: every parameter kind once. */
function layer(): FrontParams {
  return [{
    filter: Float32Array.of(1, -2), biases: Float32Array.of(0.5),
    bn: { scales: Float32Array.of(1), mean: Float32Array.of(0), variance: Float32Array.of(1) },
  }];
}
const gradients = (g: number) => [{ dFilter: Float32Array.of(g, -g), dBiases: Float32Array.of(g), dScales: Float32Array.of(-g) }];

t.test('SGD: Darknet\'s momentum and decay (decay on filters only)', async (t) => {
  const params = layer();
  const state = newOptimizerState(params, HYPER);
  t.equal(state.squares, undefined, 'no second moments without adam');
  applyUpdate(params, state, gradients(0.5), HYPER, 0);
  // filter[0]: update = -0.5 - 0.0005 * 2 * 1 = -0.501; w = 1 + 0.01 / 2 * -0.501; momentum keeps 0.9 * update.
  t.ok(Math.abs(params[0]!.filter[0]! - (1 - 0.005 * 0.501)) < 1e-7, `filter ${params[0]!.filter[0]}`);
  t.ok(Math.abs(state.updates[0]!.filter[0]! - 0.9 * -0.501) < 1e-7, `momentum ${state.updates[0]!.filter[0]}`);
  // biases: no decay.
  t.ok(Math.abs(params[0]!.biases[0]! - (0.5 - 0.005 * 0.5)) < 1e-7, `bias ${params[0]!.biases[0]}`);
});

t.test('Adam: bias-corrected moments, decay on every parameter, rate not divided by the batch', async (t) => {
  const params = layer();
  const state = newOptimizerState(params, ADAM);
  t.equal(stateBuffers(state).length, 6, 'first and second moments of filter, biases and scales');
  const expected = { w: 1, m: 0, v: 0 };
  for (const [step, g] of [[0, 0.5], [1, -0.2], [2, 0.3]] as const) {
    applyUpdate(params, state, gradients(g), ADAM, step);
    // Written out independently for filter[0]: d = -g - decay * batch * w.
    const tNumber = step + 1;
    const d = -g - 0.0005 * 2 * expected.w;
    expected.m = 0.9 * expected.m + 0.1 * d;
    expected.v = 0.999 * expected.v + 0.001 * d * d;
    expected.w += (0.01 * (expected.m / (1 - 0.9 ** tNumber))) / (Math.sqrt(expected.v / (1 - 0.999 ** tNumber)) + 1e-7);
    t.ok(Math.abs(params[0]!.filter[0]! - expected.w) < 1e-6, `step ${tNumber}: filter ${params[0]!.filter[0]} against ${expected.w}`);
    t.ok(Math.abs(state.updates[0]!.filter[0]! - expected.m) < 1e-7, `step ${tNumber}: first moment`);
    t.ok(Math.abs(state.squares![0]!.filter[0]! - expected.v) < 1e-9, `step ${tNumber}: second moment`);
  }
  // The first step moves every parameter by about the rate, whatever its gradient's size.
  const fresh = layer();
  applyUpdate(fresh, newOptimizerState(fresh, ADAM), gradients(1e-3), ADAM, 0);
  t.ok(Math.abs(fresh[0]!.biases[0]! - (0.5 - 0.01)) < 1e-4, `bias after one tiny-gradient step: ${fresh[0]!.biases[0]}`);
  t.throws(() => applyUpdate(layer(), newOptimizerState(layer()), gradients(1), ADAM, 0), /no second moments/, 'an SGD state is refused for adam');
});

t.test('[net] adam=1 with Darknet\'s B1, B2 and eps', async (t) => {
  const cfg = (net: string) => parseCfg(`[net]\nheight=8\nwidth=8\nchannels=3\n${net}\n[maxpool]\nsize=2\nstride=2\n`, 'net.cfg').network.hyper;
  t.same(cfg('adam=1').adam, { b1: 0.9, b2: 0.999, eps: 0.0000001 }, 'defaults');
  t.same(cfg('adam=1\nB1=.8\nB2=.99\neps=.001').adam, { b1: 0.8, b2: 0.99, eps: 0.001 });
  t.equal(cfg('B1=.8').adam, undefined, 'B1 without adam=1 is read (no unknown-key error) and SGD stays');
  t.equal(cfg('').adam, undefined);
});
