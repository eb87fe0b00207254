// `edge --peers` with a tail: --weights takes a file of the whole model (and refuses others with the
// reason), and tail errors in a .cfg name file:line.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { presetCfg } from '../../src/model/presets.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { limitFront } from '../../src/model/tail-layers.js';
import { decodeWeights, encodeWeights, randomParams, randomTailParams } from '../../src/model/weights.js';
import { readLatest } from '../../src/train/checkpoint.js';
import { bundleEnv, freePorts } from '../helpers/cluster.js';

const dir = mkdtempSync(join(tmpdir(), 'edgefuse-tail-cli-'));
const port = (await freePorts(1))[0]!;
const edge = (args: string[]) => spawnSync(process.execPath, ['dist/edge.js', '--peers', `127.0.0.1:${port}`, '--metrics-port', '0', ...args], { encoding: 'utf8', env: bundleEnv(), timeout: 120_000 });

const parsed = presetCfg('tiny-classifier');
const { net, tail } = limitFront(parsed.network, parseTail(parsed.tail, parsed.file), 2);
const params = randomParams(net, 7);
const tailParams = randomTailParams(net, tail, 7);
const full = encodeWeights(net, params, 0, { layers: tail, params: tailParams });

t.test('--weights loads front and tail; with a zero rate they come back unchanged in the checkpoint', async (t) => {
  writeFileSync(join(dir, 'full.weights'), full);
  const run = edge(['--model', 'tiny-classifier', '--front', '2', '--grid', '2x2', '--weights', join(dir, 'full.weights'), '--steps', '1',
    '--learning-rate', '0', '--momentum', '0', '--decay', '0', '--checkpoint', join(dir, 'ckpt'), '--checkpoint-every', '1']);
  t.equal(run.status, 0, 'the device trains one step');
  if (run.status !== 0) t.comment(run.stderr.slice(-1500));
  t.match(run.stderr, /\[rank 0\] tail on this device: conv 3x3\/1 16, avgpool, connected 10, softmax \(10 classes\)/);
  const meta = readLatest(join(dir, 'ckpt'))!;
  const back = decodeWeights(net, new Uint8Array(readFileSync(join(dir, 'ckpt', meta.weightsFile))), 'checkpoint', tail);
  t.same(back.params, params);
  t.same(back.tailParams, tailParams);
});

t.test('a weights file that does not fit the whole model is refused', async (t) => {
  writeFileSync(join(dir, 'short.weights'), full.subarray(0, full.length - 8));
  writeFileSync(join(dir, 'long.weights'), new Uint8Array([...full, 0, 0, 0, 0]));
  writeFileSync(join(dir, 'front.weights'), encodeWeights(net, params));
  const cases: [string, RegExp][] = [
    ['short.weights', /short\.weights: ends at byte \d+ while reading tail layer 2 weights/],
    ['long.weights', /long\.weights: 4 bytes remain after the last tail layer/],
    ['front.weights', /front\.weights: ends at byte \d+ while reading tail layer 0 biases/],
  ];
  for (const [file, reason] of cases) {
    const run = edge(['--model', 'tiny-classifier', '--front', '2', '--grid', '2x2', '--weights', join(dir, file), '--steps', '1']);
    t.equal(run.status, 2, file);
    t.match(run.stderr, reason);
  }
});

t.test('tail errors in a .cfg name file and line', async (t) => {
  const cfg = join(dir, 'bad.cfg');
  writeFileSync(cfg, '[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nactivation=leaky\n[avgpool]\n[route]\nlayers=-1\n');
  const run = edge(['--model', cfg, '--steps', '1']);
  t.equal(run.status, 2);
  t.match(run.stderr, /edge: .*bad\.cfg:9: \[route\] is not supported in the tail/);
});
