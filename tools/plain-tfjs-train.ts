// The baseline users would write themselves: the whole front as tfjs ops on one device, gradients
// from tfjs autodiff (the tape keeps every intermediate), SGD with momentum by a tfjs optimizer.
// Same network, data and loss as edgefuse's front-only training; the wasm backend with edgefuse's
// training kernels registered (the shipped wasm backend cannot train convolutions at all).
//   node dist/plain-tfjs-train.js [--input 608] [--steps 3] [--out result.json]
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/fused/backend.js';
import { convTensors } from '../src/fused/layer-ops.js';
import { forwardLayers } from '../src/fused/tile-compute.js';
import { mapShapes } from '../src/model/layers.js';
import { presetCfg, withInputSize } from '../src/model/presets.js';
import { randomParams } from '../src/model/weights.js';
import { fusedRegions } from '../src/tiles/fused-regions.js';
import { wholeMap } from '../src/tiles/region.js';
import { syntheticImages, syntheticTarget } from '../src/train/synthetic.js';
import { toolArgs } from './lib/tool-args.js';

const values = toolArgs('plain-tfjs-train', 'The baseline: the whole YOLOv2 front as tfjs ops trained with autodiff and SGD with momentum on one device; step times and peak RSS as JSON to --out.', { input: { type: 'string', default: '608' }, steps: { type: 'string', default: '3' }, seed: { type: 'string', default: '1' }, out: { type: 'string' } });
const size = Number(values.input);
const seed = Number(values.seed);
const net = withInputSize(presetCfg('yolov2-front').network, size, size);
const batch = 1;
const backend = await initBackend('wasm');
const maps = mapShapes(net);
const last = maps[maps.length - 1]!;
const regions = fusedRegions(net.layers, maps, 0, net.layers.length - 1, wholeMap(last.height, last.width));
const params = randomParams(net, seed);
// Trainable: filters, biases and BN scales, as in edgefuse (BN statistics stay frozen).
const layers = net.layers.map((layer, l) => {
  if (layer.kind !== 'conv') return null;
  const t = convTensors(params[l]!, layer, maps[l]!.channels);
  const filter = tf.variable(t.filter);
  const biases = tf.variable(t.biases);
  const scales = t.bn ? tf.variable(t.bn.scales) : null;
  return { filter, biases, ...(t.bn && scales ? { bn: { ...t.bn, scales } } : {}) };
});
const optimizer = tf.train.momentum(net.hyper.learningRate, net.hyper.momentum);
const target = tf.tensor4d(syntheticTarget(net, batch, seed), [batch, last.height, last.width, last.channels]);
const perImage = last.height * last.width * last.channels;

const seconds: number[] = [];
const losses: number[] = [];
for (let step = 0; step < Number(values.steps); step++) {
  const started = performance.now();
  const x = tf.tensor4d(syntheticImages(net, batch, seed, step), [batch, size, size, 3]);
  const loss = optimizer.minimize(() => {
    const output = forwardLayers(net.layers, layers, regions, x);
    return tf.mul(0.5 / perImage, tf.sum(tf.square(tf.sub(output, target)))) as tf.Scalar;
  }, true)!;
  losses.push((await loss.data())[0]!);
  tf.dispose([x, loss]);
  seconds.push((performance.now() - started) / 1000);
  process.stderr.write(`plain tfjs: step ${step + 1} ${seconds[step]!.toFixed(2)} s, loss ${losses[step]!.toFixed(5)}, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB\n`);
}
const result = { backend: backend.name, input: size, seconds, losses, peakRssBytes: process.resourceUsage().maxRSS * 1024 };
if (values.out) writeFileSync(values.out, JSON.stringify(result));
else console.log(JSON.stringify(result));
