// The [region] loss: its gradient equals Darknet's delta (negated), checked against an independent
// loop implementation of forward_region_layer (test/helpers/darknet-region.ts) on random inputs and
// truths, through whole networks against tf.grad, and on a case small enough to work by hand.
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import type { Box } from '../../src/data/detection-labels.js';
import { initBackend } from '../../src/fused/backend.js';
import { linearLoss, referenceGradients } from '../../src/fused/reference.js';
import { parseCfg } from '../../src/model/cfg.js';
import { mapShapes } from '../../src/model/layers.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { type RegionLayer, type TailLayer, limitFront, tailShapes } from '../../src/model/tail-layers.js';
import { randomParams, randomTailParams, seededRandom } from '../../src/model/weights.js';
import { syntheticImages } from '../../src/train/synthetic.js';
import { runTail } from '../../src/train/tail.js';
import { darknetRegion } from '../helpers/darknet-region.js';
import { between, pick, type Random } from '../helpers/random-net.js';
import { gradientsError, relativeError, wholeNetworkGradients } from '../helpers/reference-tail.js';

await initBackend('wasm');

const uniform = (random: Random, low: number, high: number) => low + (high - low) * random();

interface RegionCase {
  readonly text: string;
  readonly num: number;
  readonly classes: number;
  readonly describe: string;
}

function regionSection(random: Random): RegionCase {
  const num = between(random, 1, 3);
  const classes = between(random, 2, 4);
  const anchors = Array.from({ length: 2 * num }, () => uniform(random, 0.4, 3).toFixed(3)).join(',');
  const keys = {
    anchors, classes, num, coords: 4, softmax: 1, jitter: 0.2, random: 0, absolute: 1,
    thresh: pick(random, [0.05, 0.2, 0.6]),
    bias_match: pick(random, [0, 1]),
    rescore: pick(random, [0, 1]),
    object_scale: uniform(random, 1, 5).toFixed(2),
    noobject_scale: uniform(random, 0.5, 2).toFixed(2),
    class_scale: uniform(random, 0.5, 2).toFixed(2),
    coord_scale: uniform(random, 0.5, 2).toFixed(2),
    logistic_gradient: pick(random, [0, 1]),
  };
  const text = `[region]\n${Object.entries(keys).map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
  return { text, num, classes, describe: `num ${num} classes ${classes} thresh ${keys.thresh} bias_match ${keys.bias_match} rescore ${keys.rescore} logistic_gradient ${keys.logistic_gradient}` };
}

/** 0..4 boxes per image; sometimes a second box centred in the cell of the first. */
function randomTruths(random: Random, batch: number, classes: number, grid: { height: number; width: number }): Box[][] {
  return Array.from({ length: batch }, () => {
    const boxes: Box[] = [];
    const count = between(random, 0, 4);
    for (let k = 0; k < count; k++) {
      const sameCell = boxes.length > 0 && random() < 0.4;
      const first = boxes[0];
      const cx = sameCell && first ? (Math.floor(first.cx * grid.width) + random()) / grid.width : random();
      const cy = sameCell && first ? (Math.floor(first.cy * grid.height) + random()) / grid.height : random();
      boxes.push({ classId: between(random, 0, classes - 1), cx: Math.min(cx, 1), cy: Math.min(cy, 1), w: uniform(random, 0.05, 0.9), h: uniform(random, 0.05, 0.9) });
    }
    return boxes;
  });
}

const regionOf = (layers: readonly TailLayer[]) => layers[layers.length - 1] as RegionLayer;

t.test('the region gradient is Darknet\'s delta, negated, term by term', async (t) => {
  const seen = { ignored: 0, replaced: 0, shapeChoiceDiffers: 0, prior: 0, rescore: 0, biasMatch: 0, crossEntropy: 0 };
  for (let seed = 1; seed <= 40; seed++) {
    const random = seededRandom(seed);
    const region = regionSection(random);
    const grid = { height: between(random, 1, 4), width: between(random, 1, 5), channels: region.num * (5 + region.classes) };
    const parsed = parseCfg(`[net]\nheight=${grid.height}\nwidth=${grid.width}\nchannels=${grid.channels}\n[maxpool]\nsize=1\nstride=1\n${region.text}`, `region-${seed}.cfg`);
    const tail = parseTail(parsed.tail, parsed.file);
    const layer = regionOf(tail);
    const batch = between(random, 1, 3);
    const z = Float32Array.from({ length: batch * grid.height * grid.width * grid.channels }, () => uniform(random, -2.5, 2.5));
    const truths = randomTruths(random, batch, region.classes, grid);
    const imagesSeen = pick(random, [undefined, 0, 12800 - batch - 1, 12800 - batch, 40000]);
    const describe = `seed ${seed}: ${grid.height}x${grid.width} batch ${batch} ${region.describe} seen ${imagesSeen}`;

    const before = tf.memory().numTensors;
    const ours = await runTail(grid, tail, [null], z, truths, batch, imagesSeen === undefined ? {} : { imagesSeen });
    t.equal(tf.memory().numTensors, before, `${describe}: no tensor outlives the step`);
    const darknet = darknetRegion(z, batch, grid.height, grid.width, layer, truths, imagesSeen === undefined ? undefined : imagesSeen + batch);
    const error = relativeError(ours.outputGradient, darknet.delta.map((d) => -d));
    t.ok(error < 1e-5, `${describe}: gradient against -delta ${error.toExponential(2)}`);
    t.ok(Math.abs(ours.loss - darknet.loss) <= 1e-5 * Math.max(1, darknet.loss), `${describe}: loss ${ours.loss} against ${darknet.loss}`);

    seen.ignored += darknet.ignored;
    seen.replaced += darknet.replaced;
    seen.shapeChoiceDiffers += layer.biasMatch ? 0 : darknet.shapeChoiceDiffers;
    seen.prior += imagesSeen !== undefined && imagesSeen + batch < 12800 ? 1 : 0;
    seen.rescore += layer.rescore && truths.some((b) => b.length > 0) ? 1 : 0;
    seen.biasMatch += layer.biasMatch && truths.some((b) => b.length > 0) ? 1 : 0;
    seen.crossEntropy += layer.logisticGradient ? 0 : 1;
  }
  // Every branch of Darknet's rules met at least once, so the comparison above means something.
  for (const [what, count] of Object.entries(seen)) t.ok(count > 0, `exercised: ${what} (${count})`);
});

t.test('a case worked by hand: one cell, one anchor, one truth, all inputs zero', async (t) => {
  // 1x1 grid, anchor 1x1 cell, 2 classes; z = 0: σ = 0.5, predicted box (0.5, 0.5, 1, 1), p = (0.5, 0.5).
  const parsed = parseCfg('[net]\nheight=1\nwidth=1\nchannels=7\n[maxpool]\nsize=1\nstride=1\n[region]\nanchors=1,1\nclasses=2\nnum=1\nsoftmax=1\ncoord_scale=2\nobject_scale=5\n', 'hand.cfg');
  const tail = parseTail(parsed.tail, parsed.file);
  const truth: Box = { classId: 1, cx: 0.75, cy: 0.5, w: 0.5, h: 1 };
  const { outputGradient, loss } = await runTail({ height: 1, width: 1, channels: 7 }, tail, [null], new Float32Array(7), [[truth]], 1);
  const s = 2 * (2 - 0.5 * 1); // coord_scale (2 - w h) = 3
  // gradient = -delta: x: -s (0.75 - 0.5) 0.25; y: 0; w: -s (log 0.5 - 0); h: -s (log 1 - 0) = 0;
  // objectness (IoU of (0.5,0.5,1,1) with the truth is 0.5 > thresh 0.5? no: target 1): -5 (1 - 0.5) 0.25;
  // classes: p - onehot = (0.5, -0.5).
  const expected = [-s * 0.25 * 0.25, 0, -s * Math.log(0.5), 0, -5 * 0.5 * 0.25, 0.5, -0.5];
  t.ok(relativeError(outputGradient, Float32Array.from(expected)) < 1e-6, `gradient ${[...outputGradient]} against ${expected}`);
  const expectedLoss = 0.5 * s * 0.25 ** 2 + 0.5 * s * Math.log(0.5) ** 2 + 0.5 * 5 * 0.25 + Math.log(2);
  t.ok(Math.abs(loss - expectedLoss) < 1e-5, `loss ${loss} against ${expectedLoss}`);
});

t.test('region tails: gradients equal tf.grad of the whole network', async (t) => {
  for (let seed = 1; seed <= 6; seed++) {
    const random = seededRandom(100 + seed);
    const region = regionSection(random);
    const size = between(random, 6, 12);
    const text = [
      `[net]\nheight=${size}\nwidth=${size + between(random, 0, 3)}\nchannels=3\n`,
      `[convolutional]\nfilters=${between(random, 2, 4)}\nsize=3\npad=1\nbatch_normalize=${between(random, 0, 1)}\nactivation=leaky\n`,
      '[maxpool]\nsize=2\nstride=2\n',
      `[convolutional]\nfilters=${between(random, 2, 5)}\nsize=3\npad=1\nbatch_normalize=${between(random, 0, 1)}\nactivation=leaky\n`,
      `[convolutional]\nfilters=${region.num * (5 + region.classes)}\nsize=1\nactivation=linear\n`,
      region.text,
    ].join('\n');
    const parsed = parseCfg(text, `whole-${seed}.cfg`);
    // The front keeps the first two layers; the convolutions after them run in the tail.
    const split = limitFront(parsed.network, parseTail(parsed.tail, parsed.file), 2);
    const net = { ...split.net, hyper: { ...split.net.hyper, batch: between(random, 1, 2) } };
    const tail = split.tail;
    const batch = net.hyper.batch;
    const input = mapShapes(net)[net.layers.length]!;
    const grid = tailShapes(input, tail).at(-1)!;
    const truths = randomTruths(random, batch, region.classes, grid);
    const imagesSeen = pick(random, [undefined, 0]);
    const seenAfter = imagesSeen === undefined ? undefined : imagesSeen + batch;
    const describe = `seed ${seed}: ${net.input.height}x${net.input.width} grid ${grid.height}x${grid.width} batch ${batch} ${region.describe}`;

    const params = randomParams(net, seed);
    const tailParams = randomTailParams(net, tail, seed);
    const images = syntheticImages(net, batch, seed, 0);
    const whole = await wholeNetworkGradients(net, params, tail, tailParams, images, truths, batch, seenAfter);
    const ours = await runTail(input, tail, tailParams, whole.frontOutput, truths, batch, imagesSeen === undefined ? {} : { imagesSeen });
    t.ok(Math.abs(ours.loss - whole.loss) <= 1e-4 * Math.max(1, Math.abs(whole.loss)), `${describe}: loss ${ours.loss} against ${whole.loss}`);
    const outputError = relativeError(ours.outputGradient, whole.outputGradient);
    t.ok(outputError < 1e-4, `${describe}: output gradient ${outputError.toExponential(2)}`);
    t.ok(ours.outputGradient.some((g) => g !== 0), `${describe}: the gradient is not all zero`);
    const tailError = gradientsError(ours.gradients, whole.tail);
    t.ok(tailError < 1e-4, `${describe}: tail parameter gradients ${tailError.toExponential(2)}`);
    const chained = await referenceGradients(net, params, images, linearLoss(ours.outputGradient), batch);
    const frontError = Math.max(gradientsError(chained.weightGradients, whole.front.weightGradients), relativeError(chained.inputGradient, whole.front.inputGradient));
    t.ok(frontError < 1e-4, `${describe}: front gradients through the tail ${frontError.toExponential(2)}`);
  }
});

t.test('the truth must fit the tail', async (t) => {
  const region = parseCfg('[net]\nheight=2\nwidth=2\nchannels=7\n[maxpool]\nsize=1\nstride=1\n[region]\nclasses=2\nsoftmax=1\n', 'r.cfg');
  const regionTail = parseTail(region.tail, region.file);
  const map = { height: 2, width: 2, channels: 7 };
  const z = new Float32Array(2 * 2 * 2 * 7);
  const box = (extra: Partial<Box> = {}): Box => ({ classId: 0, cx: 0.5, cy: 0.5, w: 0.2, h: 0.2, ...extra });
  await t.rejects(runTail(map, regionTail, [null], z, Int32Array.from([0, 1]), 2), /a \[region\] tail detects: it needs boxes per image, not class indices/);
  await t.rejects(runTail(map, regionTail, [null], z, [[box()]], 2), /boxes for 1 images, the batch has 2/);
  await t.rejects(runTail(map, regionTail, [null], z, [[], [box({ classId: 2 })]], 2), /box 0 of image 1 has class 2, outside the region's 2 classes/);
  await t.rejects(runTail(map, regionTail, [null], z, [[box({ cx: 1.5 })], []], 2), /box 0 of image 0 has its centre at \(1\.5, 0\.5\), outside the image/);
  await t.rejects(runTail(map, regionTail, [null], z, [[box(), box({ w: 0 })], []], 2), /box 1 of image 0 has size 0x0\.2/);
  await t.rejects(runTail(map, regionTail, [null], z.subarray(1), [[], []], 2), /got 55 floats of front output/);

  const softmax = parseCfg('[net]\nheight=2\nwidth=2\nchannels=2\n[maxpool]\nsize=2\nstride=2\n[avgpool]\n[softmax]\n', 's.cfg');
  const softmaxTail = parseTail(softmax.tail, softmax.file);
  await t.rejects(runTail(mapShapes(softmax.network)[1]!, softmaxTail, [null, null], new Float32Array(2), [[box()]], 1), /a \[softmax\] tail classifies: it needs one class index per image/);
  await t.rejects(runTail(map, [], [], z, [[], []], 2), /no tail/);
});
