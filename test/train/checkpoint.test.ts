// Checkpoints round-trip weights and optimizer state, refuse another plan, and a full disk never
// leaves a truncated checkpoint as the latest one.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { presetCfg } from '../../src/model/presets.js';
import { decodeWeights, randomParams } from '../../src/model/weights.js';
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
