// Distributed training equals single-process unpartitioned training (tf.grad + the same SGD) after
// several steps: in one process through the in-memory exchange for many plans, and as real device
// processes started by the cluster launcher.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/fused/backend.js';
import { createDeviceRuntime } from '../../src/loop/device-runtime.js';
import { train } from '../../src/loop/trainer.js';
import type { Network } from '../../src/model/layers.js';
import { presetCfg, withInputSize } from '../../src/model/presets.js';
import { decodeWeights, randomParams } from '../../src/model/weights.js';
import { createInMemoryCluster } from '../../src/peers/in-memory.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan } from '../../src/tiles/plan.js';
import { WORKER_SCRIPT } from '../helpers/cluster.js';
import { newOptimizerState } from '../../src/train/optimizer.js';
import { readLatest } from '../../src/train/checkpoint.js';
import { bundleEnv } from '../helpers/cluster.js';
import { paramsRelativeError, referenceTraining } from '../helpers/reference-training.js';

await initBackend('wasm');
const STEPS = 4;
const SEED = 3;
const tiny = presetCfg('tiny').network;
const withBatch = (net: Network, batch: number): Network => ({ ...net, hyper: { ...net.hyper, batch, learningRate: 0.01 } });

t.test('in-process devices train to the reference weights', async (t) => {
  const cases = [
    { devices: 1, grid: { rows: 2, cols: 2 }, forward: 'each', backward: 'each' },
    { devices: 2, grid: { rows: 2, cols: 2 }, forward: 'all', backward: 'all' },
    { devices: 4, grid: { rows: 2, cols: 2 }, forward: '0,2', backward: '0,3' },
    { devices: 2, grid: { rows: 3, cols: 2 }, forward: 'each', backward: 'all' },
    { devices: 4, grid: { rows: 3, cols: 2 }, forward: '0,1,3', backward: '0,1,3' },
    // Compute on worker threads sharing the arenas (the bundled worker entry), overlap off and on.
    { devices: 2, grid: { rows: 2, cols: 2 }, forward: '0,2', backward: 'each', workers: 1, overlap: false },
    { devices: 1, grid: { rows: 3, cols: 2 }, forward: 'each', backward: '0,2', workers: 2, overlap: true },
  ];
  const net = withBatch(tiny, 2);
  const reference = await referenceTraining(net, randomParams(net, SEED), STEPS, SEED);
  for (const c of cases) {
    const plan = buildTilePlan({ net, grid: c.grid, devices: c.devices, batch: 2, forwardGroups: parseGrouping(c.forward, net.layers.length), backwardGroups: parseGrouping(c.backward, net.layers.length) });
    const cluster = createInMemoryCluster(c.devices, plan.tileDevice);
    const results = await Promise.all(cluster.map(async (exchange) => {
      const runtime = await createDeviceRuntime({
        plan, rank: exchange.rank, params: randomParams(net, SEED), threads: c.workers ?? 0, backend: 'wasm', overlap: c.overlap ?? true, workerScript: WORKER_SCRIPT,
      });
      try {
        await train({ runtime, exchange, params: runtime.params, state: newOptimizerState(runtime.params), firstStep: 0, steps: STEPS, seed: SEED, checksumEvery: 2 });
      } finally {
        await runtime.engine.close();
      }
      return runtime.params;
    }));
    const error = paramsRelativeError(results[0]!, reference);
    t.ok(error < 1e-4, `${c.devices} devices, grid ${c.grid.rows}x${c.grid.cols}, forward ${c.forward}, backward ${c.backward}, workers ${c.workers ?? 0}: ${error.toExponential(2)}`);
    t.ok(results.every((r) => paramsRelativeError(r, results[0]!) === 0), 'every device holds the same weights');
  }
});

function launch(devices: number, flags: string[]) {
  return spawnSync(process.execPath, ['dist/cluster.js', '--devices', String(devices), ...flags], { encoding: 'utf8', env: bundleEnv(), timeout: 240_000 });
}

t.test('device processes started by the launcher train to the reference weights', async (t) => {
  const net = withBatch(withInputSize(presetCfg('yolov2-front').network, 64, 64), 1);
  const reference = await referenceTraining(net, randomParams(net, SEED), STEPS, SEED);
  for (const [devices, grid, groups] of [[2, '2x2', 'each'], [4, '2x2', '0,8,10,12,14'], [4, '3x2', 'all']] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'edgefuse-train-'));
    const run = launch(devices, ['--model', 'yolov2-front', '--input', '64x64', '--batch', '1', '--grid', grid, '--forward-groups', groups, '--learning-rate', '0.01', '--steps', String(STEPS), '--seed', String(SEED), '--checkpoint', join(dir, 'rank0'), '--checkpoint-every', String(STEPS), '--metrics-port', '0']);
    t.equal(run.status, 0, 'the launcher and every device exit 0');
    if (run.status !== 0) t.comment(run.stderr.slice(-3000));
    // Every rank writes to its own --checkpoint; here they share the flag, so rank 0's file wins the rename race harmlessly (all weights are identical).
    const meta = readLatest(join(dir, 'rank0'))!;
    t.equal(meta.step, STEPS);
    const { params } = decodeWeights(net, new Uint8Array(readFileSync(join(dir, 'rank0', meta.weightsFile))));
    const error = paramsRelativeError(params, reference);
    t.ok(error < 1e-4, `${devices} devices, grid ${grid}, groups ${groups}: ${error.toExponential(2)}`);
  }
});
