// The fused batch-norm + activation passes on the wasm heap equal the separate tfjs ops (the path
// tf.grad differentiates) bit for bit, forward and backward, so tiles and the reference take the same
// activation branch at every element.
import t from 'tap';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/fused/backend.js';
import { type ConvAffine, convAffine, convOutputBackward, disposeLayerTensors, normalizeActivate } from '../../src/fused/layer-ops.js';
import type { ConvLayer } from '../../src/model/layers.js';
import { fillUniform, seededRandom } from '../../src/model/weights.js';
import { between, pick } from '../helpers/random-net.js';
import { affineActivateBackward, affineActivateForward, allowSimdAffine } from '../../src/fused/wasm-kernels/bn-activation.js';

await initBackend('wasm');

const sameBits = (a: ArrayLike<number>, b: ArrayLike<number>): boolean => a.length === b.length && Array.from(a).every((v, i) => Object.is(v, b[i]));

t.test('fused passes equal the separate ops bit for bit', async (t) => {
  for (let seed = 1; seed <= 40; seed++) {
    const random = seededRandom(seed);
    const channels = between(random, 1, 40);
    const batchNormalize = random() < 0.7;
    const activation = pick(random, ['leaky', 'leaky', 'relu', 'linear'] as const);
    const layer: ConvLayer = { kind: 'conv', filters: channels, size: 1, stride: 1, padBefore: 0, padTotal: 0, activation, batchNormalize };
    const vector = (low: number, high: number) => fillUniform(new Float32Array(channels), random, low, high);
    const params = {
      filter: new Float32Array(channels * channels),
      biases: vector(-1, 1),
      ...(batchNormalize ? { bn: { scales: vector(-2, 2), mean: vector(-1, 1), variance: vector(0.01, 3) } } : {}),
    };
    const fused = convAffine(params);
    const separate: ConvAffine = { biases: fused.biases, ...(fused.bn ? { bn: fused.bn } : {}) };
    const shape: [number, number, number, number] = [between(random, 1, 2), between(random, 1, 9), between(random, 1, 9), channels];
    const size = shape.reduce((a, b) => a * b, 1);
    // Values near zero after the affine part are where a rounding difference would flip a branch.
    const x = tf.tensor4d(fillUniform(new Float32Array(size), random, -1, 1), shape);
    const dy = tf.tensor4d(fillUniform(new Float32Array(size), random, -1, 1), shape);

    const outFused = normalizeActivate(layer, fused, x);
    const outSeparate = normalizeActivate(layer, separate, x);
    const describe = `#${seed} ${shape.join('x')} ${batchNormalize ? 'bn' : 'bias'} ${activation}`;
    t.ok(sameBits(outFused.dataSync(), outSeparate.dataSync()), `${describe}: forward`);

    // Backward from what the layer stashes: the pre-norm output with batch norm, else the output.
    const stash = batchNormalize ? x : outSeparate;
    const gFused = convOutputBackward(layer, fused, stash, dy);
    const gSeparate = convOutputBackward(layer, separate, stash, dy);
    t.ok(sameBits(gFused.dConv.dataSync(), gSeparate.dConv.dataSync()), `${describe}: conv-output gradient`);
    const close = (a: Float64Array, b: Float64Array) => a.every((v, i) => Math.abs(v - b[i]!) <= 1e-5 * (1 + Math.abs(b[i]!)));
    t.ok(close(gFused.biasSums, gSeparate.biasSums), `${describe}: bias sums`);
    if (batchNormalize) t.ok(close(gFused.productSums!, gSeparate.productSums!), `${describe}: scale sums`);
    tf.dispose([x, dy, outFused, outSeparate, gFused.dConv, gSeparate.dConv]);
    disposeLayerTensors([fused]);
  }
});

t.test('the SIMD kernels equal the JS loops bit for bit, sums included', async (t) => {
  t.teardown(() => allowSimdAffine(true));
  for (let seed = 1; seed <= 30; seed++) {
    const random = seededRandom(1000 + seed);
    const channels = 4 * between(random, 1, 24);
    const batchNormalize = random() < 0.7;
    const activation = pick(random, ['leaky', 'leaky', 'relu', 'linear'] as const);
    const layer: ConvLayer = { kind: 'conv', filters: channels, size: 1, stride: 1, padBefore: 0, padTotal: 0, activation, batchNormalize };
    const vector = (low: number, high: number) => fillUniform(new Float32Array(channels), random, low, high);
    const affine = {
      biases: vector(-1, 1),
      ...(batchNormalize ? { bn: { scales: vector(-2, 2), mean: vector(-1, 1), divisor: vector(0.1, 2) } } : {}),
    };
    const shape: [number, number, number, number] = [between(random, 1, 2), between(random, 1, 9), between(random, 1, 9), channels];
    const size = shape.reduce((a, b) => a * b, 1);
    const values = fillUniform(new Float32Array(size), random, -1, 1);
    // Signed zeros and values whose affine image is exactly zero exercise every branch edge.
    for (let i = 0; i < size; i += 7) values[i] = i % 2 ? -0 : 0;
    if (!batchNormalize) for (let i = 3; i < size; i += 11) values[i] = -affine.biases[i % channels]!;
    const x = tf.tensor4d(values, shape);
    const dy = tf.tensor4d(fillUniform(new Float32Array(size), random, -1, 1), shape);
    const run = (simd: boolean) => {
      allowSimdAffine(simd);
      const out = affineActivateForward(layer, affine, 0.1, x);
      const g = affineActivateBackward(layer, affine, 0.1, batchNormalize ? x : out, dy);
      const result = { out: out.dataSync().slice(), dConv: g.dConv.dataSync().slice(), biasSums: g.biasSums, productSums: g.productSums };
      tf.dispose([out, g.dConv]);
      return result;
    };
    const loops = run(false);
    const simd = run(true);
    const describe = `#${seed} ${shape.join('x')} ${batchNormalize ? 'bn' : 'bias'} ${activation}`;
    t.ok(sameBits(simd.out, loops.out), `${describe}: forward`);
    t.ok(sameBits(simd.dConv, loops.dConv), `${describe}: conv-output gradient`);
    t.ok(sameBits(simd.biasSums, loops.biasSums), `${describe}: bias sums`);
    if (batchNormalize) t.ok(sameBits(simd.productSums!, loops.productSums!), `${describe}: product sums`);
    tf.dispose([x, dy]);
  }
});
