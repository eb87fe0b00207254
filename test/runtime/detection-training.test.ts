// Detection training through the runtime: the head reads a Darknet detection list (data/shapes),
// sends every tile its input, and trains a [region] tail on the boxes. One device and three device
// processes give the same loss curve and weights to float rounding.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCfg } from '../../src/model/cfg.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { decodeWeights } from '../../src/model/weights.js';
import { readLatest } from '../../src/train/checkpoint.js';
import { runEdgeCluster } from '../helpers/cluster.js';
import { paramsRelativeError } from '../helpers/reference-training.js';

const STEPS = 3;
const CFG = `[net]
batch=4
width=32
height=32
channels=3
learning_rate=0.001
momentum=0.9
decay=0.0005
adam=1
[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
size=1
stride=1
pad=1
filters=16
activation=linear
[region]
anchors=1,1, 2,2
bias_match=1
classes=3
coords=4
num=2
softmax=1
object_scale=5
noobject_scale=1
class_scale=1
coord_scale=1
logistic_gradient=0
thresh=.6
`;

t.test('one device and three devices train a detector on data/shapes alike', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefuse-detect-train-'));
  const cfg = join(dir, 'small-detector.cfg');
  writeFileSync(cfg, CFG);
  const run = async (devices: number, extra: string[] = []) => {
    const out = join(dir, `d${devices}`);
    const runs = await runEdgeCluster(devices, () => [
      ...extra, '--model', cfg, '--grid', '2x2', '--steps', String(STEPS), '--data', 'data/shapes/train.txt',
      '--checkpoint', join(out, 'rank{rank}'), '--checkpoint-every', String(STEPS), '--report', join(out, 'report{rank}.json'),
    ]);
    t.same(runs.map((r) => r.code), runs.map(() => 0), `${devices} device(s) exit 0`);
    if (runs.some((r) => r.code !== 0)) t.comment(runs.map((r) => r.log.slice(-1500)).join('\n---\n'));
    const report = JSON.parse(readFileSync(join(out, 'report0.json'), 'utf8')) as { steps: { loss: number }[]; evaluations: { step: number; name: string; value: number }[] };
    const meta = readLatest(join(out, 'rank0'))!;
    return { losses: report.steps.map((s) => s.loss), weights: readFileSync(join(out, 'rank0', meta.weightsFile)), evaluations: report.evaluations, log: runs[0]!.log };
  };
  const one = await run(1, ['--valid', 'data/shapes/valid.txt', '--eval-every', '2']);
  t.same(one.evaluations.map((e) => [e.step, e.name]), [[0, 'mAP@0.5'], [2, 'mAP@0.5'], [3, 'mAP@0.5']], 'evaluated before training, every 2 steps and at the end');
  t.ok(one.evaluations.every((e) => e.value >= 0 && e.value <= 1), `mAP values: ${one.evaluations.map((e) => e.value.toFixed(4)).join(', ')}`);
  t.match(one.log, /evaluation at step 3: mAP@0\.5 \d\.\d{4}/);
  const three = await run(3);
  t.equal(one.losses.length, STEPS);
  t.ok(one.losses.every((l) => Number.isFinite(l) && l > 0), `the loss is finite: ${one.losses.map((l) => l.toFixed(4)).join(', ')}`);
  const worst = Math.max(...one.losses.map((l, i) => Math.abs(l - three.losses[i]!) / Math.abs(l)));
  t.ok(worst < 1e-5, `the loss curves agree to ${worst.toExponential(2)} (1 device: ${one.losses.map((l) => l.toFixed(5)).join(', ')})`);
  const parsed = parseCfg(CFG, cfg);
  const tail = parseTail(parsed.tail, cfg);
  const a = decodeWeights(parsed.network, new Uint8Array(one.weights), 'one', tail);
  const b = decodeWeights(parsed.network, new Uint8Array(three.weights), 'three', tail);
  const error = Math.max(paramsRelativeError(a.params, b.params), paramsRelativeError(a.tailParams!, b.tailParams!));
  t.ok(error < 1e-4, `weights after ${STEPS} steps agree: ${error.toExponential(2)}`);
});
