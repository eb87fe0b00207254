// Checkpoints round-trip weights and optimizer state, refuse another plan, and a full disk never
// leaves a truncated checkpoint as the latest one. With a tail, the head's checkpoint holds the whole
// network and resuming equals an uninterrupted run.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/fused/backend.js';
import { planHash } from '../../src/loop/plan-messages.js';
import { createDeviceRuntime } from '../../src/loop/device-runtime.js';
import { train } from '../../src/loop/trainer.js';
import { presetCfg } from '../../src/model/presets.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { limitFront } from '../../src/model/tail-layers.js';
import { type FrontParams, type TailParams, decodeWeights, encodeWeights, randomParams, randomTailParams } from '../../src/model/weights.js';
import { createInMemoryCluster } from '../../src/peers/in-memory.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { HEAD_RANK, buildTilePlan, stripEndpoints } from '../../src/tiles/plan.js';
import { loadCheckpoint, readLatest, saveCheckpoint } from '../../src/train/checkpoint.js';
import { newOptimizerState } from '../../src/train/optimizer.js';

const net = presetCfg('tiny').network;

t.test('round trip', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefuse-ckpt-'));
  const params = randomParams(net, 1);
  const state = newOptimizerState(params);
  state.updates[0]!.filter.fill(0.25);
  saveCheckpoint(dir, net, params, state, 3, 'plan-a', 2);
  saveCheckpoint(dir, net, params, state, 6, 'plan-a', 2);
  saveCheckpoint(dir, net, params, state, 9, 'plan-a', 2);
  t.same(readdirSync(dir).filter((f) => f.endsWith('.weights')).sort(), ['step-6.weights', 'step-9.weights'], 'the latest and the previous checkpoint are kept');
  const restored = newOptimizerState(params);
  const loaded = loadCheckpoint(dir, net, restored, 'plan-a')!;
  t.equal(loaded.meta.step, 9);
  t.same(loaded.params, params);
  t.same(restored, state);
  t.throws(() => loadCheckpoint(dir, net, newOptimizerState(params), 'plan-b'), /written for plan plan-a, this run's plan is plan-b/);
  t.equal(loadCheckpoint(mkdtempSync(join(tmpdir(), 'edgefuse-empty-')), net, restored, 'plan-a'), null);
});

t.test('Adam\'s first and second moments round trip; an SGD checkpoint does not fit an Adam run', async (t) => {
  const adamNet = { ...net, hyper: { ...net.hyper, adam: { b1: 0.9, b2: 0.999, eps: 1e-7 } } };
  const dir = mkdtempSync(join(tmpdir(), 'edgefuse-ckpt-adam-'));
  const params = randomParams(adamNet, 1);
  const state = newOptimizerState(params, adamNet.hyper);
  state.updates[0]!.filter.fill(0.25);
  state.squares![0]!.biases.fill(0.5);
  saveCheckpoint(dir, adamNet, params, state, 4, 'plan-a', 2);
  const restored = newOptimizerState(params, adamNet.hyper);
  loadCheckpoint(dir, adamNet, restored, 'plan-a');
  t.same(restored, state);
  const sgdDir = mkdtempSync(join(tmpdir(), 'edgefuse-ckpt-sgd-'));
  saveCheckpoint(sgdDir, net, params, newOptimizerState(params), 4, 'plan-a', 2);
  t.throws(() => loadCheckpoint(sgdDir, adamNet, newOptimizerState(params, adamNet.hyper), 'plan-a'), /does not fit this model's optimizer state: \d+ floats where \d+ are expected/);
});

t.test('a full disk keeps the last complete checkpoint as the latest', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgefuse-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=160k', 'tmpfs', dir], { stdio: 'pipe' });
  } catch {
    t.comment('cannot mount a small tmpfs here (needs root): skipped; CI runs as root');
    return;
  }
  try {
    const params = randomParams(net, 2);
    const state = newOptimizerState(params);
    saveCheckpoint(dir, net, params, state, 1, 'p', 1);
    // Fill what is left of the disk, then try the next checkpoint.
    const filler = openSync(join(dir, 'filler'), 'w');
    try {
      const block = Buffer.alloc(4096, 1);
      for (;;) writeSync(filler, block);
    } catch {
      // ENOSPC: the disk is full
    } finally {
      closeSync(filler);
    }
    params[0]!.biases.fill(7);
    t.throws(() => saveCheckpoint(dir, net, params, state, 2, 'p', 1), /could not write checkpoint file .*step-2\.weights.*(ENOSPC|no space)/i);
    const latest = readLatest(dir)!;
    t.equal(latest.step, 1, 'latest.json still names the last complete checkpoint');
    const { params: back } = decodeWeights(net, new Uint8Array(readFileSync(join(dir, latest.weightsFile))));
    t.same(back, randomParams(net, 2), 'and it decodes completely, with the weights of step 1');
    t.notOk(readdirSync(dir).some((f) => f.includes('.tmp-')), 'no temporary files are left behind');
    rmSync(join(dir, 'filler'));
    saveCheckpoint(dir, net, params, state, 3, 'p', 1);
    t.equal(readLatest(dir)!.step, 3, 'with space again, checkpoints continue');
  } finally {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

t.test('with a tail: the head checkpoints the whole network, the others the front; resume equals an uninterrupted run', async (t) => {
  await initBackend('wasm');
  const parsed = presetCfg('tiny-classifier');
  const split = limitFront(parsed.network, parseTail(parsed.tail, parsed.file), 2);
  const tailNet = { ...split.net, hyper: { ...split.net.hyper, batch: 2 } };
  const { tail } = split;
  const groups = parseGrouping('each', tailNet.layers.length);
  const plan = buildTilePlan({ net: tailNet, grid: { rows: 2, cols: 2 }, devices: 2, batch: 2, forwardGroups: groups, backwardGroups: groups, tail });
  const hash = planHash(plan);
  const SEED = 4;
  /** Runs every device from `firstStep` (from their checkpoints when resuming); returns the head's weights. */
  const run = async (firstStep: number, steps: number, dirs?: string[], resume = false): Promise<{ params: FrontParams; tailParams: TailParams }> => {
    const results = await Promise.all(createInMemoryCluster(2, stripEndpoints(plan)).map(async (exchange) => {
      const isHead = exchange.rank === HEAD_RANK;
      let params = randomParams(tailNet, SEED);
      let tailParams = isHead ? randomTailParams(tailNet, tail, SEED) : [];
      const state = newOptimizerState(params);
      const tailState = newOptimizerState(tailParams);
      if (resume) {
        const loaded = loadCheckpoint(dirs![exchange.rank]!, tailNet, state, hash, isHead ? { layers: tail, state: tailState } : undefined)!;
        t.equal(loaded.meta.step, firstStep, `rank ${exchange.rank} resumes at step ${firstStep}`);
        params = loaded.params;
        if (isHead) tailParams = loaded.tailParams!;
      }
      const runtime = await createDeviceRuntime({ plan, rank: exchange.rank, params, threads: 0 });
      await train({
        runtime, exchange, params: runtime.params, state, firstStep, steps, seed: SEED, checksumEvery: 1,
        ...(isHead ? { tail: { params: tailParams, state: tailState } } : {}),
        ...(dirs ? { checkpoint: { dir: dirs[exchange.rank]!, every: 2 } } : {}),
      });
      await runtime.engine.close();
      return { params: runtime.params, tailParams };
    }));
    return results[HEAD_RANK]!;
  };
  const uninterrupted = await run(0, 6);
  const dirs = [0, 1].map((r) => mkdtempSync(join(tmpdir(), `edgefuse-tail-ckpt-${r}-`)));
  await run(0, 4, dirs);
  const files = dirs.map((dir) => readLatest(dir)!);
  const headBytes = readFileSync(join(dirs[0]!, files[0]!.weightsFile));
  const otherBytes = readFileSync(join(dirs[1]!, files[1]!.weightsFile));
  const front = randomParams(tailNet, SEED);
  t.equal(headBytes.length, encodeWeights(tailNet, front, 0, { layers: tail, params: randomTailParams(tailNet, tail, SEED) }).length, 'the head writes front + tail');
  t.equal(otherBytes.length, encodeWeights(tailNet, front).length, 'the other rank writes the front');
  const frontFloats = front.reduce((n, p) => n + (p ? p.filter.length + p.biases.length + (p.bn ? p.bn.scales.length : 0) : 0), 0);
  t.ok(readFileSync(join(dirs[0]!, files[0]!.stateFile)).length > frontFloats * 4, "the head's state holds the tail's momentum too");
  t.equal(readFileSync(join(dirs[1]!, files[1]!.stateFile)).length, frontFloats * 4, "the other rank's state holds the front's");
  t.throws(() => loadCheckpoint(dirs[1]!, tailNet, newOptimizerState(front), hash, { layers: tail, state: newOptimizerState(randomTailParams(tailNet, tail, SEED)) }),
    /ends at byte \d+ while reading tail layer 0 biases/, "a front-only checkpoint is refused as the head's");
  const resumed = await run(4, 2, dirs, true);
  t.same(resumed.params, uninterrupted.params, 'the front equals the uninterrupted run bit for bit');
  t.same(resumed.tailParams, uninterrupted.tailParams, 'and so does the tail');
});
