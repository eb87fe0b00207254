// The filters a compute thread keeps (ComputeParams): one tensor per layer for every task of a run,
// its rotation for the input gradient made once, everything outside the run in hand disposed.
import t from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/fused/backend.js';
import { computeParams, filterTensor, inputGradientFilter } from '../../src/fused/layer-ops.js';
import { CONSTANT_SCHEDULE, type ConvLayer, type Network, convLayer, mapShapes, maxpoolLayer } from '../../src/model/layers.js';
import { randomParams } from '../../src/model/weights.js';

await initBackend('wasm');

const net: Network = {
  name: 'kept-filters',
  input: { height: 12, width: 12, channels: 3 },
  layers: [convLayer(4, 3), maxpoolLayer(2), convLayer(5, 3), convLayer(6, 3, 2)],
  hyper: { batch: 1, learningRate: 0.01, momentum: 0.9, decay: 0.0005, schedule: CONSTANT_SCHEDULE },
};
const maps = mapShapes(net);
const conv = (l: number) => net.layers[l] as ConvLayer;

t.test('a layer\'s filter and its rotation are made once and shared until the run changes', async (t) => {
  const weights = randomParams(net, 7);
  const before = tf.memory().numTensors;
  const params = computeParams(net, weights);
  const affineTensors = tf.memory().numTensors - before;

  const filter = params.filter(2);
  t.equal(params.filter(2), filter, 'the same tensor for every task of the run');
  t.same(Array.from(filter.dataSync()), Array.from(weights[2]!.filter), 'the parameters as they are');
  const rotated = params.gradientFilter(2);
  t.equal(params.gradientFilter(2), rotated);
  const plain = filterTensor(weights[2]!, conv(2), maps[2]!.channels);
  const expected = inputGradientFilter(conv(2), plain);
  t.same(Array.from(rotated.dataSync()), Array.from(expected.dataSync()), 'rotated as inputGradientFilter does');
  tf.dispose([plain, expected]);
  t.equal(params.gradientFilter(3), params.filter(3), 'at stride 2 the input gradient takes the filter as it is');

  params.keepOnly(2, 3);
  t.notOk(filter.isDisposed || rotated.isDisposed, 'layers of the run are kept');
  params.keepOnly(0, 1);
  t.ok(filter.isDisposed && rotated.isDisposed, 'layers outside the run are disposed');
  t.not(params.filter(2), filter, 'and made again when asked');
  t.equal(tf.memory().numTensors - before, affineTensors + 1);

  // A rotation wanted without the filter (a backward that recomputes nothing) keeps only the rotation.
  params.keepOnly(0, 0);
  const counted = tf.memory().numTensors;
  params.gradientFilter(0);
  t.equal(tf.memory().numTensors, counted + 1);

  params.dispose();
  t.equal(tf.memory().numTensors, before, 'dispose leaves nothing behind');
  t.throws(() => params.filter(1), /layer 1 is a maxpool layer and has no filter/);
});

t.test('without keeping across tasks a layer\'s filters go when the task is done with it', async (t) => {
  const before = tf.memory().numTensors;
  const params = computeParams(net, randomParams(net, 8), false);
  const resident = tf.memory().numTensors;
  const filter = params.filter(2);
  t.equal(params.filter(2), filter, 'shared within the task (a recompute and the rotation use it)');
  params.gradientFilter(2);
  params.filter(3);
  params.release(2);
  t.ok(filter.isDisposed, 'released');
  t.equal(tf.memory().numTensors, resident + 1, 'layer 3\'s filter stays until its own release');
  params.release(3);
  t.equal(tf.memory().numTensors, resident);
  params.dispose();
  t.equal(tf.memory().numTensors, before);
});

t.test('a kept filter outlives release', async (t) => {
  const params = computeParams(net, randomParams(net, 9));
  const filter = params.filter(2);
  params.release(2);
  t.equal(params.filter(2), filter);
  params.dispose();
});
