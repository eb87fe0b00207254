// The tail's loss, output gradient and parameter gradients equal tf.grad of the whole unpartitioned
// network (the front's reference plus an independently written tail) on random small cfgs.
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/fused/backend.js';
import { linearLoss, referenceGradients } from '../../src/fused/reference.js';
import { parseCfg } from '../../src/model/cfg.js';
import { mapShapes } from '../../src/model/layers.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { limitFront, tailClasses, tailShapes } from '../../src/model/tail-layers.js';
import { randomParams, randomTailParams, seededRandom } from '../../src/model/weights.js';
import { syntheticImages, syntheticLabels } from '../../src/train/synthetic.js';
import { runTail } from '../../src/train/tail.js';
import { between, pick } from '../helpers/random-net.js';
import { gradientsError, relativeError, wholeNetworkGradients } from '../helpers/reference-tail.js';

await initBackend('wasm');

const activation = (random: () => number) => pick(random, ['leaky', 'relu', 'linear']);

function conv(random: () => number): string {
  const size = pick(random, [1, 2, 3]);
  const padding = random() < 0.6 ? 'pad=1' : `padding=${between(random, 0, size - 1)}`;
  return `[convolutional]\nfilters=${between(random, 1, 4)}\nsize=${size}\nstride=${pick(random, [1, 1, 2])}\n${padding}\n` +
    `batch_normalize=${random() < 0.4 ? 1 : 0}\nactivation=${activation(random)}\n`;
}

function maxpool(random: () => number): string {
  const [size, stride] = pick(random, [[2, 2], [3, 1], [3, 2]] as const);
  return `[maxpool]\nsize=${size}\nstride=${stride}\n`;
}

/** A random cfg: a conv/maxpool front, then conv/maxpool, avgpool and/or connected layers and a softmax. */
function randomCfg(seed: number) {
  const random = seededRandom(seed);
  for (;;) {
    const sections = [`[net]\nheight=${between(random, 6, 13)}\nwidth=${between(random, 6, 13)}\nchannels=${between(random, 1, 3)}\n`];
    // Leading conv/maxpool layers all parse as the front; --front's split moves the later ones into the tail.
    const spatial = between(random, 1, 4);
    for (let i = 0; i < spatial; i++) sections.push(random() < 0.7 ? conv(random) : maxpool(random));
    const ending = pick(random, ['avg', 'avg-conn', 'conn', 'conn-conn']);
    if (ending.startsWith('avg')) sections.push('[avgpool]\n');
    for (let i = 0; i < ending.split('conn').length - 1; i++) sections.push(`[connected]\noutput=${between(random, 2, 6)}\nactivation=${activation(random)}\n`);
    sections.push('[softmax]\ngroups=1\n');
    try {
      const parsed = parseCfg(sections.join('\n'), `random-${seed}.cfg`);
      const split = limitFront(parsed.network, parseTail(parsed.tail, parsed.file), between(random, 1, spatial));
      const tail = split.tail;
      const net = { ...split.net, hyper: { ...split.net.hyper, batch: between(random, 1, 3) } };
      const input = mapShapes(net)[net.layers.length]!;
      tailShapes(input, tail);
      return { net, tail, input, describe: `${net.input.height}x${net.input.width}x${net.input.channels} front [${net.layers.map((l) => l.kind).join(' ')}] tail [${tail.map((l) => l.kind).join(' ')}] batch ${net.hyper.batch}` };
    } catch {
      continue; // a map shrank to nothing: draw again
    }
  }
}

t.test('tail gradients equal tf.grad of the whole network', async (t) => {
  const exercised = new Set<string>(); // layer kinds seen in tails whose gradient is not all zero
  for (let seed = 1; seed <= 14; seed++) {
    const { net, tail, input, describe } = randomCfg(seed);
    const batch = net.hyper.batch;
    const params = randomParams(net, seed);
    const tailParams = randomTailParams(net, tail, seed);
    const images = syntheticImages(net, batch, seed, 0);
    const labels = syntheticLabels(batch, tailClasses(input, tail), seed, 0);
    const whole = await wholeNetworkGradients(net, params, tail, tailParams, images, labels, batch);
    const before = tf.memory().numTensors;
    const ours = await runTail(input, tail, tailParams, whole.frontOutput, labels, batch);
    t.equal(tf.memory().numTensors, before, `${describe}: no tensor outlives the step`);
    t.ok(Math.abs(ours.loss - whole.loss) <= 1e-5 * Math.max(1, Math.abs(whole.loss)), `${describe}: loss ${ours.loss} against ${whole.loss}`);
    const outputError = relativeError(ours.outputGradient, whole.outputGradient);
    t.ok(outputError < 1e-4, `${describe}: output gradient ${outputError.toExponential(2)}`);
    const tailError = gradientsError(ours.gradients, whole.tail);
    t.ok(tailError < 1e-4, `${describe}: tail parameter gradients ${tailError.toExponential(2)}`);
    // The front, back-propagating our output gradient, gets the whole network's front gradients.
    const chained = await referenceGradients(net, params, images, linearLoss(ours.outputGradient), batch);
    const frontError = Math.max(gradientsError(chained.weightGradients, whole.front.weightGradients), relativeError(chained.inputGradient, whole.front.inputGradient));
    t.ok(frontError < 1e-4, `${describe}: front gradients through the tail ${frontError.toExponential(2)}`);
    if (ours.outputGradient.some((g) => g !== 0)) for (const l of tail) exercised.add(l.kind);
  }
  t.same([...exercised].sort(), ['avgpool', 'connected', 'conv', 'maxpool', 'softmax'], 'every tail layer kind is checked with a non-zero gradient');
});

t.test('labels and output sizes are checked', async (t) => {
  const parsed = parseCfg('[net]\nheight=4\nwidth=4\nchannels=2\n[maxpool]\nsize=2\nstride=2\n[avgpool]\n[softmax]\n', 'small.cfg');
  const tail = parseTail(parsed.tail, parsed.file);
  const input = mapShapes(parsed.network)[1]!;
  const output = new Float32Array(2 * 2 * 2 * 2);
  await t.rejects(runTail(input, tail, [null, null], output, Int32Array.from([0, 2]), 2), /label 2 of image 1 is outside the softmax's 2 classes/);
  await t.rejects(runTail(input, tail, [null, null], output, Int32Array.from([0]), 2), /1 labels for a batch of 2/);
  await t.rejects(runTail(input, tail, [null, null], output.subarray(1), Int32Array.from([0, 1]), 2), /got 15 floats of front output, a 2x2x2x2 map has 16/);
  // Softmax over [avgpool] of zeros: every class has p = 1/2, loss = 2 log 2, gradient (p - truth) / 4 per position.
  const { loss, outputGradient } = await runTail(input, tail, [null, null], output, Int32Array.from([0, 1]), 2);
  t.ok(Math.abs(loss - 2 * Math.log(2)) < 1e-6, `loss ${loss}`);
  t.same([...outputGradient.subarray(0, 2)], [-0.125, 0.125]);
});
