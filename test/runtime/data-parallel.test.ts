// Data-parallel replicas (the baseline the tile plans are compared with): N devices, each training
// batch / N whole images through a one-device plan and summing gradients (and the tail's) over the
// cluster, equal single-process tf.grad training of the whole batch, in one process and as device
// processes (`edge --parallel data`).
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/fused/backend.js';
import { createDeviceRuntime } from '../../src/loop/device-runtime.js';
import { planValidator, tailBucket } from '../../src/loop/plan-messages.js';
import { train } from '../../src/loop/trainer.js';
import type { Network } from '../../src/model/layers.js';
import { presetCfg } from '../../src/model/presets.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { limitFront } from '../../src/model/tail-layers.js';
import { randomParams, randomTailParams } from '../../src/model/weights.js';
import { createInMemoryCluster } from '../../src/peers/in-memory.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan } from '../../src/tiles/plan.js';
import { newOptimizerState } from '../../src/train/optimizer.js';
import { runEdgeCluster } from '../helpers/cluster.js';
import { paramsRelativeError, referenceTailTraining, referenceTraining } from '../helpers/reference-training.js';

await initBackend('wasm');
const STEPS = 3;
const SEED = 5;
const BATCH = 4;
const withHyper = (net: Network, adam: boolean): Network => ({
  ...net, hyper: { ...net.hyper, batch: BATCH, learningRate: 0.01, ...(adam ? { adam: { b1: 0.9, b2: 0.999, eps: 1e-7 } } : {}) },
});
const ONE_DEVICE = { rows: 1, cols: 1 };

t.test('replicas of a front-only model train to the reference weights', async (t) => {
  for (const c of [{ replicas: 2, groups: 'each', adam: false }, { replicas: 4, groups: 'all', adam: false }, { replicas: 2, groups: '0,2', adam: true }]) {
    const net = withHyper(presetCfg('tiny').network, c.adam);
    const reference = await referenceTraining(net, randomParams(net, SEED), STEPS, SEED);
    const grouping = parseGrouping(c.groups, net.layers.length);
    const plan = buildTilePlan({ net, grid: ONE_DEVICE, devices: 1, batch: BATCH / c.replicas, replicas: c.replicas, forwardGroups: grouping, backwardGroups: grouping });
    const cluster = createInMemoryCluster(c.replicas, Array.from({ length: c.replicas }, (_, r) => r));
    const losses: number[][] = [];
    const results = await Promise.all(cluster.map(async (exchange) => {
      const runtime = await createDeviceRuntime({ plan, rank: 0, params: randomParams(net, SEED), threads: 0, backend: 'wasm' });
      const mine: number[] = [];
      losses[exchange.rank] = mine;
      try {
        await train({ runtime, exchange, params: runtime.params, state: newOptimizerState(runtime.params, net.hyper), firstStep: 0, steps: STEPS, seed: SEED, checksumEvery: 1, onStep: (r) => mine.push(r.loss) });
      } finally {
        await runtime.engine.close();
      }
      return runtime.params;
    }));
    const describe = `${c.replicas} replicas of ${BATCH / c.replicas} image${BATCH / c.replicas === 1 ? '' : 's'}, groups ${c.groups}${c.adam ? ', Adam' : ''}`;
    const error = paramsRelativeError(results[0]!, reference);
    t.ok(error < 1e-4, `${describe}: ${error.toExponential(2)} from the reference`);
    t.ok(results.every((r) => paramsRelativeError(r, results[0]!) === 0), `${describe}: every replica holds the same weights`);
    t.ok(losses.every((l) => l.length === STEPS && l.every((v, i) => v === losses[0]![i])), `${describe}: every replica reports the summed loss`);
  }
});

t.test('replicas with a tail sum the tail\'s gradients too', async (t) => {
  const parsed = presetCfg('tiny-classifier');
  const split = limitFront(parsed.network, parseTail(parsed.tail, parsed.file), 2);
  const net = withHyper(split.net, false);
  const { tail } = split;
  const reference = await referenceTailTraining(net, tail, randomParams(net, SEED), randomTailParams(net, tail, SEED), STEPS, SEED);
  const grouping = parseGrouping('each', net.layers.length);
  const plan = buildTilePlan({ net, grid: ONE_DEVICE, devices: 1, batch: 2, replicas: 2, forwardGroups: grouping, backwardGroups: grouping, tail });
  const cluster = createInMemoryCluster(2, [0, 1]);
  const results = await Promise.all(cluster.map(async (exchange) => {
    const runtime = await createDeviceRuntime({ plan, rank: 0, params: randomParams(net, SEED), threads: 0, backend: 'wasm' });
    const tailParams = randomTailParams(net, tail, SEED);
    try {
      await train({
        runtime, exchange, params: runtime.params, state: newOptimizerState(runtime.params), tail: { params: tailParams, state: newOptimizerState(tailParams) },
        firstStep: 0, steps: STEPS, seed: SEED, checksumEvery: 1,
      });
    } finally {
      await runtime.engine.close();
    }
    return { params: runtime.params, tailParams };
  }));
  for (const [r, result] of results.entries()) {
    const front = paramsRelativeError(result.params, reference.params);
    const tailError = paramsRelativeError(result.tailParams, reference.tailParams);
    t.ok(front < 1e-4 && tailError < 1e-4, `replica ${r}: front ${front.toExponential(2)}, tail ${tailError.toExponential(2)}`);
  }
});

t.test('replicated plans: what they refuse and what the wire allows', async (t) => {
  const net = withHyper(presetCfg('tiny').network, false);
  const each = parseGrouping('each', net.layers.length);
  t.throws(() => buildTilePlan({ net, grid: { rows: 2, cols: 1 }, devices: 2, batch: 1, replicas: 2, forwardGroups: each, backwardGroups: each }), /cannot be replicated/);
  t.throws(() => buildTilePlan({ net, grid: ONE_DEVICE, devices: 1, batch: 1, replicas: 0, forwardGroups: each, backwardGroups: each }), /replicas must be a positive integer/);
  const plan = buildTilePlan({ net, grid: ONE_DEVICE, devices: 1, batch: 2, replicas: 3, forwardGroups: each, backwardGroups: each });
  const validator = planValidator(plan, 10);
  const chunk = (bucket: string) => ({ bucket, offset: 0, step: 0, round: 0 });
  t.equal(validator.reduce(chunk('0/checksum'), 9, 1), null, 'a checksum slot per replica');
  t.match(validator.reduce(chunk('0/checksum'), 10, 1), /outside bucket/);
  t.equal(validator.reduce(chunk(tailBucket(4)), 10, 1), null);
  t.match(planValidator(buildTilePlan({ net, grid: ONE_DEVICE, devices: 1, batch: 2, forwardGroups: each, backwardGroups: each }), 10).reduce(chunk(tailBucket(4)), 10, 1), /no replicated tail/);
  const exchange = createInMemoryCluster(2, [0, 1])[0]!;
  const runtime = await createDeviceRuntime({ plan, rank: 0, params: randomParams(net, SEED), threads: 0, backend: 'wasm' });
  await t.rejects(train({ runtime, exchange, params: runtime.params, state: newOptimizerState(runtime.params), firstStep: 0, steps: 1, seed: SEED, checksumEvery: 1 }), /the plan is for 3 devices, the exchange connects 2/);
  await runtime.engine.close();
});

t.test('edge --parallel data: 2 device processes give the loss curve of one device training the whole batch', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefuse-data-parallel-'));
  const run = async (devices: number, extra: string[]) => {
    const runs = await runEdgeCluster(devices, () => ['--model', 'tiny-classifier', '--front', '2', '--batch', '4', '--steps', '3', '--report', join(dir, `d${devices}-{rank}.json`), ...extra]);
    t.same(runs.map((r) => r.code), runs.map(() => 0), `${devices} device(s) exit 0`);
    if (runs.some((r) => r.code !== 0)) t.comment(runs.map((r) => r.log.slice(-1500)).join('\n---\n'));
    return { runs, losses: (JSON.parse(readFileSync(join(dir, `d${devices}-0.json`), 'utf8')) as { steps: { loss: number }[] }).steps.map((s) => s.loss) };
  };
  const one = await run(1, ['--grid', '1x1']);
  const two = await run(2, ['--parallel', 'data']);
  t.match(two.runs[1]!.log, /data-parallel replica 1 of 2: images 2\.\.3 of every batch of 4/);
  const worst = Math.max(...one.losses.map((l, i) => Math.abs(l - two.losses[i]!) / Math.abs(l)));
  t.ok(one.losses.length === 3 && worst < 1e-5, `loss curves agree to ${worst.toExponential(2)}: ${one.losses.map((l) => l.toFixed(5)).join(', ')}`);
});

t.test('edge --parallel data refuses what it cannot do', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--parallel', 'data', '--batch', '3'], /--batch 3 is not a multiple of the 2 devices/],
    [['--parallel', 'data', '--grid', '2x2'], /--grid must be 1x1, got "2x2"/],
    [['--parallel', 'data', '--forward-groups', 'auto'], /no grid or grouping to choose/],
    [['--parallel', 'pipeline'], /--parallel must be tiles or data, got "pipeline"/],
  ];
  for (const [flags, pattern] of cases) {
    const runs = await runEdgeCluster(2, () => ['--model', 'tiny', '--steps', '1', ...flags], 30_000);
    t.ok(runs.every((r) => r.code === 2), `${flags.join(' ')}: exit 2`);
    t.match(runs[0]!.log, pattern);
  }
});
