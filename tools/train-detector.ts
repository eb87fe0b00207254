// A short single-process training run of a detection model on a Darknet detection set, for choosing
// a preset's schedule: the unpartitioned front and tail on this one device (runFront, runTail, the
// front's tf.grad reference for its gradients), Darknet SGD, and the validation mAP at IoU 0.5
// before training, every --eval-every steps and at the end. Not the distributed runtime.
// Batches are read as the runtime reads them (same seeded order, no augmentation unless --augment).
//   node dist/train-detector.js --model yolov2-shapes --data data/shapes --steps 100 [--lr X] [--burn-in N]
//       [--eval-every K] [--init initial|random] [--gain G] [--augment] [--save FILE]
// --weights FILE starts from a whole-model .weights file (with --steps 0: only evaluates it).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDetectionList } from '../src/data/detection-set.js';
import { loadDetectionBatch } from '../src/data/load.js';
import { readNames } from '../src/data/list-file.js';
import { batchesOf, epochOrder } from '../src/data/sampling.js';
import { evaluateDetector } from '../src/eval/evaluate.js';
import { type Model, runFront } from '../src/eval/run-network.js';
import { initBackend } from '../src/fused/backend.js';
import { linearLoss, referenceGradients } from '../src/fused/reference.js';
import { loadModel } from '../src/model/load.js';
import { parseTail } from '../src/model/tail-cfg.js';
import { INITIAL_GAIN, decodeWeights, encodeWeights, setObjectnessPrior, initialParams, initialTailParams, randomParams, randomTailParams } from '../src/model/weights.js';
import { applyUpdate, newOptimizerState } from '../src/train/optimizer.js';
import { runTail } from '../src/train/tail.js';
import { toolArgs } from './lib/tool-args.js';

const values = toolArgs('train-detector', "A short single-process training run of a detection model with validation mAP, for choosing a preset's schedule (not the distributed runtime).", {
    model: { type: 'string' }, data: { type: 'string' }, steps: { type: 'string' }, batch: { type: 'string' }, lr: { type: 'string' },
    'burn-in': { type: 'string' }, 'eval-every': { type: 'string' }, seed: { type: 'string' }, save: { type: 'string' },
    init: { type: 'string' }, adam: { type: 'boolean' }, gain: { type: 'string' }, augment: { type: 'boolean' }, weights: { type: 'string' }, 'objectness-prior': { type: 'string' },
  });
const parsed = loadModel(values.model ?? 'yolov2-shapes');
const tail = parseTail(parsed.tail, parsed.file);
const base = parsed.network;
const hyper = {
  ...base.hyper,
  batch: Number(values.batch ?? base.hyper.batch),
  learningRate: Number(values.lr ?? base.hyper.learningRate),
  schedule: { ...base.hyper.schedule, burnIn: Number(values['burn-in'] ?? base.hyper.schedule.burnIn) },
  ...(values.adam ? { adam: { b1: 0.9, b2: 0.999, eps: 0.0000001 } } : {}),
};
const net = { ...base, hyper };
const steps = Number(values.steps ?? 100);
const evalEvery = Number(values['eval-every'] ?? steps);
const seed = Number(values.seed ?? 1);
const dataDir = values.data ?? 'data/shapes';
const classes = readNames(join(dataDir, 'shapes.names')).length;
const train = openDetectionList(join(dataDir, 'train.txt'), { classes });
const valid = openDetectionList(join(dataDir, 'valid.txt'), { classes });

const backend = await initBackend();
console.log(`backend ${backend.name}; ${net.name} ${net.input.height}x${net.input.width}, batch ${hyper.batch}, lr ${hyper.learningRate}, burn_in ${hyper.schedule.burnIn}, policy ${hyper.schedule.policy}, ${hyper.adam ? 'adam' : 'sgd'}; ${train.samples.length} train, ${valid.samples.length} valid images`);
const init = values.init ?? 'initial';
const gain = Number(values.gain ?? INITIAL_GAIN);
if (init !== 'initial' && init !== 'random') throw new Error('--init is initial or random');
console.log(`init ${init}${init === 'initial' ? ` (gain ${gain.toFixed(3)})` : ''}, augmentation ${values.augment ? 'jitter 0.2 and flips' : 'off (as the runtime)'}`);
const loaded = values.weights ? decodeWeights(net, new Uint8Array(readFileSync(values.weights)), values.weights, tail) : null;
const model: Model = loaded ? { net, params: loaded.params, tail, tailParams: loaded.tailParams! } : init === 'initial'
  ? { net, params: initialParams(net, seed, gain), tail, tailParams: initialTailParams(net, tail, seed, gain) }
  : { net, params: randomParams(net, seed), tail, tailParams: randomTailParams(net, tail, seed) };
if (values['objectness-prior'] && !loaded) {
  setObjectnessPrior(model.params, model.tailParams, tail, Number(values['objectness-prior']));
  console.log(`objectness prior ${values['objectness-prior']}`);
}
const frontState = newOptimizerState(model.params, hyper);
const tailState = newOptimizerState(model.tailParams, hyper);

const evaluate = async (step: number) => {
  const started = performance.now();
  const result = await evaluateDetector(model, valid, { batch: 10 });
  const found = result.detections.reduce((n, d) => n + d.length, 0);
  console.log(`step ${step}: valid mAP@0.5 ${result.map.toFixed(4)} (per class ${result.perClass.map((ap) => ap?.toFixed(3)).join(' ')}; ${found} detections above 0.005) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
};

await evaluate(0);
const started = performance.now();
let step = 0;
let lossSum = 0;
let lossCount = 0;
for (let epoch = 0; step < steps; epoch++) {
  for (const indices of batchesOf(epochOrder(train.samples.length, seed, epoch), hyper.batch)) {
    if (step >= steps) break;
    const batch = loadDetectionBatch(train, indices, { height: net.input.height, width: net.input.width, ...(values.augment ? { augment: { seed, jitter: 0.2, flip: true }, epoch } : {}) });
    const front = await runFront(net, model.params, batch.images, hyper.batch);
    if (step === 0) {
      const v = front.values;
      let sum = 0, squares = 0;
      for (let i = 0; i < v.length; i++) { sum += v[i]!; squares += v[i]! * v[i]!; }
      const mean = sum / v.length;
      console.log(`front output at step 0: mean ${mean.toExponential(2)}, rms ${Math.sqrt(squares / v.length).toExponential(2)}`);
    }
    const result = await runTail(front.shape, tail, model.tailParams, front.values, batch.boxes, hyper.batch, { imagesSeen: step * hyper.batch });
    const frontGradients = await referenceGradients(net, model.params, batch.images, linearLoss(result.outputGradient), hyper.batch);
    const rate = applyUpdate(model.params, frontState, frontGradients.weightGradients, hyper, step);
    applyUpdate(model.tailParams, tailState, result.gradients, hyper, step);
    step++;
    lossSum += result.loss / hyper.batch;
    lossCount++;
    if (step % 10 === 0 || step === 1) {
      console.log(`step ${step}: loss ${(result.loss / hyper.batch).toFixed(3)} per image (mean of the last ${lossCount} ${(lossSum / lossCount).toFixed(3)}), rate ${rate.toExponential(2)}, ${((performance.now() - started) / 1000 / step).toFixed(2)} s/step`);
      lossSum = 0;
      lossCount = 0;
    }
    if (step % evalEvery === 0 && step < steps) await evaluate(step);
  }
}
await evaluate(step);
if (values.save) {
  writeFileSync(values.save, encodeWeights(net, model.params, step * hyper.batch, { layers: tail, params: model.tailParams }));
  console.log(`weights written to ${values.save}`);
}
