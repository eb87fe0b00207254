// `edge plan` and the train command's `auto` flags as users run them (npm test builds dist first).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseProfile } from '../../src/grouping/profile.js';
import { bundleEnv, freePorts } from '../helpers/cluster.js';

const edge = (args: string[]) => spawnSync(process.execPath, ['dist/edge.js', ...args], { encoding: 'utf8', env: bundleEnv() });

t.test('--json prints one object: the choice, its split and memory, and the runner-ups', async (t) => {
  const run = edge(['plan', '--model', 'yolov2-front', '--input', '160x160', '--devices', '4', '--profile', 'pi3', '--memory-limit', '2G', '--json']);
  t.equal(run.status, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  t.equal(out.ok, true);
  t.match(out, { model: 'yolov2-front', input: '160x160', layers: 16, devices: 4, batch: 1, profile: 'pi3', workers: 4, memoryLimitBytes: 2 * 1024 ** 3 });
  const best = out.best;
  t.match(best.grid, /^\d+x\d+$/);
  t.ok(best.fits && best.peakMemoryBytes <= out.memoryLimitBytes);
  t.equal(best.memoryPerDevice.length, 4);
  t.ok(Math.abs(best.computeSeconds + best.exchangeSeconds + best.reduceSeconds - best.stepSeconds) < 1e-9, 'the split adds up');
  const names = out.runnerUps.map((r: { name: string }) => r.name);
  for (const name of ['each', 'all', 'reference 0,8,10,12,14', 'reference 1,2,4,8 / ends 1,5,7,9']) {
    const r = out.runnerUps.find((c: { name: string }) => c.name === name);
    if (!r) {
      t.ok(best.name === 'planned', `${name} is missing from ${names} only when it is the choice`);
      continue;
    }
    t.equal(r.grid, best.grid, `${name} is on the chosen grid`);
    t.ok(r.stepSeconds >= best.stepSeconds - 1e-12, `${name} ${r.stepSeconds} >= ${best.stepSeconds}`);
  }
  t.ok(out.search.gridsConsidered >= 1 && out.search.planEvaluations >= 1);
  t.match(out.dataParallel, { batch: 4, grouping: /^(all|each)$/, fits: Boolean });
  t.ok(Math.abs(out.dataParallel.secondsPerImage * 4 - out.dataParallel.stepSeconds) < 1e-9 && out.dataParallel.reduceBytesPerDevice > 0, 'data-parallel: 4 images per step, an all-reduce');
});

t.test('the text report names the choice and how to train with it', async (t) => {
  const run = edge(['plan', '--model', 'tiny', '--devices', '2', '--grid', '2x2', '--forward-groups', 'each']);
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /grid {13}2x2/);
  t.match(run.stdout, /forward groups {3}0,1,2,3,4\n/);
  t.match(run.stdout, /step {13}[\d.]+ s = compute [\d.]+ \+ exchange waits [\d.]+ \+ exposed reduce [\d.]+/);
  t.match(run.stdout, /train with: --grid 2x2 --forward-groups 0,1,2,3,4 --backward-groups [\d,]+/);
  t.match(run.stdout, /data-parallel \(--parallel data --batch 2 --forward-groups (all|each)\): 2 images per step in [\d.]+ s, [\d.]+ s per image \(the plan above: [\d.]+\)/);
});

t.test('bad input exits 2 naming it; nothing fitting exits 1 naming the smallest peak', async (t) => {
  const dir = t.testdir({ 'bad.json': JSON.stringify({ name: 'x', compute: {}, link: {}, memory: {} }), 'broken.json': '{' });
  const cases: [string[], RegExp][] = [
    [['plan', '--model', 'tiny'], /plan needs --devices N/],
    [['plan', '--devices', '2', '--profile', join(dir, 'bad.json')], /bad\.json: compute\.conv must be a non-empty array, got nothing/],
    [['plan', '--devices', '2', '--profile', join(dir, 'broken.json')], /broken\.json: not valid JSON/],
    [['plan', '--devices', '2', '--profile', 'pi9'], /--profile "pi9" is neither a built-in profile \(this-machine, pi3\) nor a file/],
    [['plan', '--model', 'tiny', '--devices', '2', '--forward-groups', '0,9'], /layer 9 is out of range 0\.\.4/],
    [['plan', '--model', 'tiny', '--devices', '2', '--grid', '30x2'], /grid 30x2 is larger than map/],
    [['plan', '--devices', '2', '--memory-limit', 'lots'], /memory size must look like 1G/],
  ];
  for (const [args, message] of cases) {
    const run = edge(args);
    t.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    t.match(run.stderr, message);
  }
  const none = edge(['plan', '--model', 'tiny', '--devices', '2', '--memory-limit', '50M']);
  t.equal(none.status, 1, none.stderr);
  t.match(none.stderr, /no plan fits the memory limit of 50\.0 MiB per device on 2 devices: the smallest predicted peak is \d+\.\d MiB/);
});

t.test('--show-profile prints a profile that --profile FILE accepts', async (t) => {
  const run = edge(['plan', '--profile', 'pi3', '--show-profile']);
  t.equal(run.status, 0, run.stderr);
  t.equal(parseProfile(JSON.parse(run.stdout), 'shown').name, 'pi3');
});

t.test('edge --help lists plan', async (t) => {
  const run = edge(['--help']);
  t.match(run.stdout, /edge plan \.\.\. {6}choose grid and groupings/);
});

t.test('training with auto groupings uses and logs the planner\'s choice', async (t) => {
  const [port] = await freePorts(1);
  const run = spawnSync(process.execPath, [
    'dist/edge.js', '--peers', `127.0.0.1:${port}`, '--model', 'tiny', '--grid', '2x2', '--forward-groups', 'auto',
    '--steps', '1', '--metrics-port', '0', '--backend', 'wasm', '--workers', '0',
  ], { encoding: 'utf8', env: bundleEnv() });
  t.equal(run.status, 0, run.stderr);
  const chosen = /planner \(profile this-machine, 1 worker, [\d.]+ s\): grid 2x2, forward ([\d,]+), backward ([\d,]+):/.exec(run.stderr);
  if (!chosen) return t.fail(`no planner line in:\n${run.stderr}`);
  t.match(run.stderr, new RegExp(`plan [0-9a-f]+: tiny 24x24, grid 2x2, tiles 0,1,2,3 of 4, forward ${chosen[1]}, backward ${chosen[2]}`), 'the plan trained is the one chosen');
  t.match(run.stderr, /step 1\/1 loss/);

  const refused = edge(['--peers', `127.0.0.1:${port}`, '--model', 'tiny', '--backward-groups', 'auto', '--memory-limit', '10M']);
  t.equal(refused.status, 2);
  t.match(refused.stderr, /edge: no plan fits the memory limit of 10\.0 MiB/);
  const stray = edge(['--peers', `127.0.0.1:${port}`, '--model', 'tiny', '--forward-groups', 'each', '--profile', 'pi3']);
  t.equal(stray.status, 2);
  t.match(stray.stderr, /--profile is used only with --grid, --forward-groups or --backward-groups auto/);
});

t.test('training plans its groupings unless they are given', async (t) => {
  const [port] = await freePorts(1);
  const train = (flags: string[]) => spawnSync(process.execPath, [
    'dist/edge.js', '--peers', `127.0.0.1:${port}`, '--model', 'tiny', '--grid', '2x2', '--steps', '1', '--metrics-port', '0', '--backend', 'wasm', '--workers', '0', ...flags,
  ], { encoding: 'utf8', env: bundleEnv() });
  const planned = train([]);
  t.equal(planned.status, 0, planned.stderr);
  t.match(planned.stderr, /planner \(profile this-machine, 1 worker, [\d.]+ s\): grid 2x2, forward [\d,]+, backward [\d,]+:/, 'no grouping flags: the planner chooses');
  const given = train(['--forward-groups', 'each']);
  t.equal(given.status, 0, given.stderr);
  t.notMatch(given.stderr, /planner \(/, 'a given grouping is kept, the planner not run');
  t.match(given.stderr, /forward 0,1,2,3/);
});
