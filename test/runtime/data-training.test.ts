// Training on a data set read by the head, which sends every tile its input region (phase `input`),
// equals single-process training on the same batches; so does every device reading the set itself.
// Real PNG files, real device processes.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { openClassificationList } from '../../src/data/classification-set.js';
import { initBackend } from '../../src/fused/backend.js';
import { createDeviceRuntime } from '../../src/loop/device-runtime.js';
import { train } from '../../src/loop/trainer.js';
import { presetCfg } from '../../src/model/presets.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { limitFront } from '../../src/model/tail-layers.js';
import { decodeWeights, initialParams, initialTailParams, seededRandom } from '../../src/model/weights.js';
import { createInMemoryCluster } from '../../src/peers/in-memory.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { HEAD_RANK, buildTilePlan, stripEndpoints } from '../../src/tiles/plan.js';
import { readLatest } from '../../src/train/checkpoint.js';
import { newOptimizerState } from '../../src/train/optimizer.js';
import { classificationData } from '../../src/train/training-data.js';
import { runEdgeCluster } from '../helpers/cluster.js';
import { paramsRelativeError, referenceTailTraining } from '../helpers/reference-training.js';

await initBackend('wasm');
const STEPS = 3;
const SEED = 5;
const CLASSES = 10;

/** 12 random 20x20 PNGs named after their class (c0..c9), a list file and a names file. */
function writeSet(): { list: string; names: string } {
  const dir = mkdtempSync(join(tmpdir(), 'edgefuse-data-'));
  const random = seededRandom(11);
  const lines: string[] = [];
  for (let i = 0; i < 12; i++) {
    const png = new PNG({ width: 20, height: 20 });
    for (let p = 0; p < png.data.length; p++) png.data[p] = (p & 3) === 3 ? 255 : Math.floor(random() * 256);
    const file = `c${i % CLASSES}_${i}.png`;
    writeFileSync(join(dir, file), PNG.sync.write(png));
    lines.push(file);
  }
  writeFileSync(join(dir, 'train.txt'), `${lines.join('\n')}\n`);
  const names = join(dir, 'classes.names');
  writeFileSync(names, `${Array.from({ length: CLASSES }, (_, c) => `c${c}`).join('\n')}\n`);
  return { list: join(dir, 'train.txt'), names };
}

const { list, names } = writeSet();
const parsed = presetCfg('tiny-classifier');
const { net, tail } = limitFront(parsed.network, parseTail(parsed.tail, parsed.file), 2);
const classNames = readFileSync(names, 'utf8').trim().split('\n');
const data = classificationData(openClassificationList(list, classNames), net, net.hyper.batch, SEED);
const reference = await referenceTailTraining(net, tail, initialParams(net, SEED), initialTailParams(net, tail, SEED), STEPS, SEED, (step) => {
  const b = data.batch(step);
  if (b.truth?.kind !== 'classes') throw new Error('classification data gives classes');
  return { images: b.images, labels: b.truth.classIds };
});

t.test('in-process devices: input from the head, or read everywhere, equals one process', async (t) => {
  for (const [devices, groups, everyDevice] of [[1, 'each', false], [3, '0,1', false], [4, 'all', true]] as const) {
    const grouping = parseGrouping(groups, net.layers.length);
    const plan = buildTilePlan({ net, grid: { rows: 2, cols: 2 }, devices, batch: net.hyper.batch, forwardGroups: grouping, backwardGroups: grouping, tail });
    const results = await Promise.all(createInMemoryCluster(devices, stripEndpoints(plan)).map(async (exchange) => {
      const isHead = exchange.rank === HEAD_RANK;
      const runtime = await createDeviceRuntime({ plan, rank: exchange.rank, params: initialParams(net, SEED), threads: 0 });
      const tailParams = isHead ? initialTailParams(net, tail, SEED) : [];
      const reads = isHead || everyDevice;
      await train({
        runtime, exchange, params: runtime.params, state: newOptimizerState(runtime.params),
        data: reads ? data : { description: 'remote', synthetic: false, batch: () => { throw new Error('only the head reads the data'); } },
        dataOnEveryDevice: everyDevice,
        ...(isHead ? { tail: { params: tailParams, state: newOptimizerState(tailParams) } } : {}),
        firstStep: 0, steps: STEPS, seed: SEED, checksumEvery: 1,
      });
      await runtime.engine.close();
      return { params: runtime.params, tailParams };
    }));
    const front = paramsRelativeError(results[0]!.params, reference.params);
    const tailError = paramsRelativeError(results[HEAD_RANK]!.tailParams, reference.tailParams);
    t.ok(front < 1e-4 && tailError < 1e-4, `${devices} devices, groups ${groups}, ${everyDevice ? 'every device reads' : 'the head sends'}: front ${front.toExponential(2)}, tail ${tailError.toExponential(2)}`);
  }
});

t.test('device processes train on the list file read by rank 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefuse-data-run-'));
  const runs = await runEdgeCluster(3, (rank) => [
    '--model', 'tiny-classifier', '--front', '2', '--grid', '2x2', '--forward-groups', 'each', '--steps', String(STEPS), '--seed', String(SEED),
    '--data', list, '--names', names, '--checkpoint', join(dir, `rank${rank}`), '--checkpoint-every', String(STEPS),
  ]);
  t.same(runs.map((r) => r.code), [0, 0, 0], 'every device exits 0');
  if (runs.some((r) => r.code !== 0)) t.comment(runs.map((r) => r.log.slice(-1500)).join('\n---\n'));
  t.match(runs[0]!.log, /data: .*train\.txt \(12 images\), sent to every tile from here/);
  const meta = readLatest(join(dir, 'rank0'))!;
  const { params, tailParams } = decodeWeights(net, new Uint8Array(readFileSync(join(dir, 'rank0', meta.weightsFile))), 'rank0', tail);
  const front = paramsRelativeError(params, reference.params);
  const tailError = paramsRelativeError(tailParams!, reference.tailParams);
  t.ok(front < 1e-4 && tailError < 1e-4, `front ${front.toExponential(2)}, tail ${tailError.toExponential(2)}`);
});

t.test('bad data is reported with file and line, skipped or fatal', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefuse-data-bad-'));
  writeFileSync(join(dir, 'c1_broken.png'), 'not a png');
  writeFileSync(join(dir, 'list.txt'), `${list.replace('train.txt', '')}c0_0.png\nc1_broken.png\nc2_missing.png\n`);
  const flags = (mode: string) => () => ['--model', 'tiny-classifier', '--front', '2', '--steps', '1', '--data', join(dir, 'list.txt'), '--names', names, '--bad-samples', mode];
  const [skipped] = await runEdgeCluster(1, flags('skip'));
  t.equal(skipped!.code, 0, 'skip: training goes on');
  t.match(skipped!.log, /skipped 2 bad samples/);
  t.match(skipped!.log, /c1_broken\.png: /);
  t.match(skipped!.log, /c2_missing\.png: image not found \(listed at .*list\.txt:3\)/);
  const [failed] = await runEdgeCluster(1, flags('fail'));
  t.equal(failed!.code, 2, 'fail: a usage error');
  t.match(failed!.log, /edge: .*c1_broken\.png: /);
  t.notMatch(failed!.log, /\n\s+at /, 'no stack trace');
});
