// Inference of the whole network: the front equals the tf.grad reference's forward, the tail is
// checked against a 1x1 convolution written out in JS; evaluation over a set is independent of
// how it is batched.
import t from 'tap';
import * as tf from '@tensorflow/tfjs';
import type { Box } from '../../src/data/detection-labels.js';
import { openDetectionList } from '../../src/data/detection-set.js';
import { evaluateClassifier, evaluateDetector } from '../../src/eval/evaluate.js';
import { runFront, runNetwork } from '../../src/eval/run-network.js';
import { initBackend } from '../../src/fused/backend.js';
import { linearLoss, referenceGradients } from '../../src/fused/reference.js';
import { parseCfg } from '../../src/model/cfg.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { randomParams, randomTailParams } from '../../src/model/weights.js';
import { syntheticImages } from '../../src/train/synthetic.js';
import { relativeError } from '../helpers/reference-tail.js';

await initBackend('wasm');

const CFG = `[net]\nheight=12\nwidth=10\nchannels=3\n
[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=leaky\n
[maxpool]\nsize=2\nstride=2\n
[convolutional]\nfilters=14\nsize=1\nactivation=linear\n
[region]\nanchors=1,1,2,3\nclasses=2\nnum=2\nsoftmax=1\n`;

t.test('front and tail forward on one device', async (t) => {
  const parsed = parseCfg(CFG, 'small.cfg');
  // The front is the conv and the maxpool; the 1x1 conv runs in the tail.
  const net = { ...parsed.network, layers: parsed.network.layers.slice(0, 2) };
  const tail = [parsed.network.layers[2]!, ...parseTail(parsed.tail, parsed.file)];
  const params = randomParams(net, 3);
  const tailParams = randomTailParams(net, tail, 3);
  const batch = 2;
  const images = syntheticImages(net, batch, 3, 0);

  const before = tf.memory().numTensors;
  const front = await runFront(net, params, images, batch);
  const reference = await referenceGradients(net, params, images, linearLoss(new Float32Array(front.values.length)), batch);
  t.ok(relativeError(front.values, reference.output) < 1e-6, 'the front equals the reference forward');
  t.same(front.shape, { height: 6, width: 5, channels: 4 });

  const out = await runNetwork({ net, params, tail, tailParams }, images, batch);
  t.equal(tf.memory().numTensors, before, 'no tensor outlives inference');
  t.same(out.shape, { height: 6, width: 5, channels: 14 }, 'the region\'s input map');
  // The 1x1 linear conv by hand: out[p, o] = bias[o] + sum_c in[p, c] * filter[c, o].
  const { filter, biases } = tailParams[0]!;
  const expected = new Float32Array(out.values.length);
  for (let p = 0; p < batch * 6 * 5; p++) {
    for (let o = 0; o < 14; o++) {
      let sum = biases[o]!;
      for (let c = 0; c < 4; c++) sum += front.values[p * 4 + c]! * filter[c * 14 + o]!;
      expected[p * 14 + o] = sum;
    }
  }
  t.ok(relativeError(out.values, expected) < 1e-5, 'the tail equals the convolution by hand');
  await t.rejects(runNetwork({ net, params, tail, tailParams }, images.subarray(1), batch), /got 719 input floats, 2 images of 12x10x3 are 720/);
});

t.test('evaluation over a data set does not depend on the forward batch size', async (t) => {
  const parsed = parseCfg(`[net]\nheight=96\nwidth=96\nchannels=3\n
[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n
[maxpool]\nsize=16\nstride=16\n
[convolutional]\nfilters=16\nsize=1\nactivation=linear\n
[region]\nanchors=1,1,2,2\nclasses=3\nnum=2\nsoftmax=1\n`, 'shapes-small.cfg');
  const tail = parseTail(parsed.tail, parsed.file);
  const model = { net: parsed.network, params: randomParams(parsed.network, 9), tail, tailParams: randomTailParams(parsed.network, tail, 9) };
  const valid = openDetectionList('data/shapes/valid.txt', { classes: 3 });
  const indices = [0, 1, 2];
  const one = await evaluateDetector(model, valid, { batch: 1, indices });
  const three = await evaluateDetector(model, valid, { batch: 2, indices });
  t.same(three.perClass, one.perClass);
  t.same(three.detections, one.detections);
  const expected = indices.map((i) => valid.samples[i]!.boxes);
  const sameBox = (a: Box, b: Box) => a.classId === b.classId && [a.cx - b.cx, a.cy - b.cy, a.w - b.w, a.h - b.h].every((d) => Math.abs(d) < 1e-9);
  t.ok(one.truths.every((boxes, i) => boxes.length === expected[i]!.length && boxes.every((b, k) => sameBox(b, expected[i]![k]!))), 'the truths are the set\'s boxes');
  t.ok(one.detections.some((d) => d.length > 0), 'a random network detects something above 0.005');
  await t.rejects(evaluateClassifier(model, { source: 'x', names: [], samples: [], report: { skipped: 0, problems: [] } }), /has no \[softmax\] layer: accuracy needs a classifier/);
});
