// Our wasm training kernels against the cpu backend's reference kernels on random shapes.
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/fused/backend.js';
import { DIRECT_MAX_PATCH } from '../../src/fused/wasm-kernels/conv2d-backprop-filter.js';
import { fillUniform, seededRandom } from '../../src/model/weights.js';
import { relativeError } from '../../src/verify/verify.js';
import { between, pick } from '../helpers/random-net.js';

await initBackend('wasm');

type Pad = 'valid' | 'same' | [[0, 0], [number, number], [number, number], [0, 0]];

/** Run `kernel` on both backends with the same inputs; returns [wasm, cpu] results. */
async function onBothBackends(run: () => tf.Tensor): Promise<[Float32Array, Float32Array]> {
  await tf.setBackend('wasm');
  const wasm = run();
  const wasmData = (await wasm.data()) as Float32Array;
  wasm.dispose();
  await tf.setBackend('cpu');
  const cpu = run();
  const cpuData = (await cpu.data()) as Float32Array;
  cpu.dispose();
  await tf.setBackend('wasm');
  return [wasmData, cpuData];
}

const randomArray = (random: () => number, n: number, low = -1, high = 1) => fillUniform(new Float32Array(n), random, low, high);

interface ConvCase {
  x: number[]; filter: number[]; stride: number; pad: Pad; describe: string;
}

function randomConvCase(random: () => number, big = false): ConvCase {
  const k = big ? 5 : pick(random, [1, 2, 3, 5]);
  const stride = big ? 1 : pick(random, [1, 1, 2]);
  // The big case spans two im2col chunks (2^22 floats each) yet stays cheap for the cpu reference.
  const h = big ? 300 : between(random, k, 13);
  const w = big ? 300 : between(random, k, 13);
  const cin = big ? 3 : between(random, 1, 9);
  const cout = big ? 2 : between(random, 1, 9);
  const p = between(random, 0, k - 1);
  const pad: Pad = pick(random, ['valid', 'same', [[0, 0], [p, k - 1 - p], [k - 1 - p, p], [0, 0]]] as const) as Pad;
  const n = big ? 1 : between(random, 1, 2);
  return { x: [n, h, w, cin], filter: [k, k, cin, cout], stride, pad, describe: `x ${[n, h, w, cin]} k${k} s${stride} ${JSON.stringify(pad)} -> ${cout}` };
}

function outShape(c: ConvCase): number[] {
  const info = tf.backend_util.computeConv2DInfo(c.x as [number, number, number, number], c.filter as [number, number, number, number], c.stride, 1, c.pad);
  return info.outShape;
}

/** Conv2DBackpropFilter of case `c` on random x and dy, on wasm and on cpu. */
async function backpropFilterOnBothBackends(random: () => number, c: ConvCase): Promise<[Float32Array, Float32Array]> {
  const x = randomArray(random, c.x.reduce((a, b) => a * b));
  const dyShape = outShape(c);
  const dy = randomArray(random, dyShape.reduce((a, b) => a * b));
  return onBothBackends(() =>
    tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor(x, c.x), dy: tf.tensor(dy, dyShape) }, {
      strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape: c.filter,
    }) as tf.Tensor,
  );
}

t.test('Conv2DBackpropFilter matches cpu', async (t) => {
  const random = seededRandom(11);
  for (let i = 0; i < 40; i++) {
    const c = randomConvCase(random, i === 0);
    const [wasm, cpu] = await backpropFilterOnBothBackends(random, c);
    t.ok(relativeError(wasm, cpu) < 1e-5, `${c.describe}: ${relativeError(wasm, cpu)}`);
  }
});

t.test('Conv2DBackpropFilter of small patches (the direct SIMD kernel) matches cpu', async (t) => {
  const random = seededRandom(12);
  const seen = new Set<string>();
  for (let i = 0; i < 24; i++) {
    // Patches of at most DIRECT_MAX_PATCH values, odd and even, 16-multiple outputs, unpadded.
    const k = pick(random, [1, 2, 3, 5]);
    const cin = between(random, 1, Math.max(1, Math.min(9, Math.floor(DIRECT_MAX_PATCH / (k * k)))));
    const cout = pick(random, [16, 32, 48]);
    const stride = pick(random, [1, 2]);
    const c: ConvCase = { x: [between(random, 1, 2), between(random, k, 30), between(random, k, 30), cin], filter: [k, k, cin, cout], stride, pad: 'valid', describe: '' };
    seen.add((k * k * cin) % 2 === 0 ? 'even patch' : 'odd patch');
    const [wasm, cpu] = await backpropFilterOnBothBackends(random, c);
    t.ok(relativeError(wasm, cpu) < 1e-5, `x ${c.x} k${k} s${stride} -> ${cout}: ${relativeError(wasm, cpu)}`);
  }
  t.same([...seen].sort(), ['even patch', 'odd patch']);
});

t.test('Conv2DBackpropInput matches cpu (stride 1 fast path and the strided fallback)', async (t) => {
  const random = seededRandom(12);
  for (let i = 0; i < 40; i++) {
    const c = randomConvCase(random);
    const filter = randomArray(random, c.filter.reduce((a, b) => a * b));
    const dyShape = outShape(c);
    const dy = randomArray(random, dyShape.reduce((a, b) => a * b));
    const [wasm, cpu] = await onBothBackends(() =>
      tf.engine().runKernel('Conv2DBackpropInput', { dy: tf.tensor(dy, dyShape), filter: tf.tensor(filter, c.filter) }, {
        strides: c.stride, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x,
      }) as tf.Tensor,
    );
    t.ok(relativeError(wasm, cpu) < 1e-5, `${c.describe}: ${relativeError(wasm, cpu)}`);
  }
});

t.test('MaxPoolGrad matches cpu, also on windows of only negative values', async (t) => {
  const random = seededRandom(13);
  for (let i = 0; i < 30; i++) {
    const [size, stride] = pick(random, [[2, 2], [3, 2], [3, 1], [2, 1]] as const);
    const shape = [between(random, 1, 2), between(random, size, 11), between(random, size, 11), between(random, 1, 6)];
    // Mostly negative inputs: the case the shipped kernel gets wrong.
    const x = randomArray(random, shape.reduce((a, b) => a * b), -1, i % 2 === 0 ? -0.01 : 1);
    const [wasm, cpu] = await onBothBackends(() => {
      const input = tf.tensor4d(x, shape as [number, number, number, number]);
      const output = tf.maxPool(input, size, stride, 'valid');
      const dy = tf.onesLike(output).mul(tf.range(1, output.size + 1).reshape(output.shape));
      return tf.engine().runKernel('MaxPoolGrad', { dy, input, output }, { filterSize: size, strides: stride, pad: 'valid' }) as tf.Tensor;
    });
    t.ok(relativeError(wasm, cpu) === 0, `maxpool ${size}/${stride} on ${shape}: ${relativeError(wasm, cpu)}`);
  }
});

t.test('gradients through tf.grad use the registered kernels on wasm', async (t) => {
  const random = seededRandom(14);
  const x = randomArray(random, 2 * 9 * 9 * 3);
  const w = randomArray(random, 3 * 3 * 3 * 4);
  const [wasm, cpu] = await onBothBackends(() => {
    const f = (xs: tf.Tensor, ws: tf.Tensor) => tf.sum(tf.maxPool(tf.leakyRelu(tf.conv2d(xs as tf.Tensor4D, ws as tf.Tensor4D, 1, 'same'), 0.1), 2, 2, 'valid'));
    const [dx, dw] = tf.grads(f)([tf.tensor4d(x, [2, 9, 9, 3]), tf.tensor4d(w, [3, 3, 3, 4])]);
    return tf.concat([dx!.flatten(), dw!.flatten()]);
  });
  t.ok(relativeError(wasm, cpu) < 1e-5, `relative error ${relativeError(wasm, cpu)}`);
});
