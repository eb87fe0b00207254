// `edge profile` as users run it (npm test builds dist first): the profile it writes parses back,
// has a rule for every conv class of the model, and drives `edge plan --profile FILE`; bad flags
// exit 2 naming the flag. --quick keeps each run to a few seconds; no measured value is asserted
// beyond being positive and finite (this machine's speed is not under test).
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type DeviceProfile, convRule, parseProfileText } from '../../src/grouping/profile.js';
import { mapShapes } from '../../src/model/layers.js';
import { presetCfg } from '../../src/model/presets.js';
import { bundleEnv } from '../helpers/cluster.js';

const edge = (args: string[]) => spawnSync(process.execPath, ['dist/edge.js', ...args], { encoding: 'utf8', env: bundleEnv() });

function checkRates(t: Test, profile: DeviceProfile): void {
  const c = profile.compute;
  const rates = [
    ...c.conv.flatMap((r) => [r.forwardGflops, r.inputGradientGflops, r.filterGradientGflops]),
    c.maxpoolForwardGflops, c.maxpoolBackwardGflops, c.elementwiseGflops, c.parallelEfficiency, profile.link.mibPerSecond, profile.memory.runtimeMiB,
  ];
  t.ok(rates.every((r) => Number.isFinite(r) && r > 0), `every rate is positive and finite: ${rates.join(', ')}`);
  t.ok([c.layerOverheadMs, c.taskOverheadMs, profile.link.latencyMs].every((x) => Number.isFinite(x) && x >= 0), 'overheads are finite and not negative');
  t.ok(c.parallelEfficiency <= 1);
}

/** Every conv layer of the model matches a rule of its own class (kernel and channel bound), not the catch-all. */
function checkClasses(t: Test, profile: DeviceProfile, model: string): void {
  const net = presetCfg(model).network;
  const maps = mapShapes(net);
  net.layers.forEach((layer, l) => {
    if (layer.kind !== 'conv') return;
    const channels = maps[l]!.channels;
    const rule = convRule(profile, layer, channels);
    t.equal(rule.kernel, layer.size, `layer ${l} (${layer.size}x${layer.size} from ${channels}) uses a rule of its kernel`);
    const tighter = profile.compute.conv.filter((r) => r.kernel === layer.size && r.maxInChannels !== undefined && r.maxInChannels < channels);
    t.ok(rule.maxInChannels === undefined || rule.maxInChannels === channels, `layer ${l}: the rule's channel bound is its own (${rule.maxInChannels})`);
    t.ok(tighter.every((r) => profile.compute.conv.indexOf(r) < profile.compute.conv.indexOf(rule)), `layer ${l}: narrower classes come first`);
  });
  const last = profile.compute.conv[profile.compute.conv.length - 1]!;
  t.ok(last.kernel === undefined && last.maxInChannels === undefined, 'the last rule is the catch-all');
}

t.test('--quick --out writes a profile that parses back, covers every conv class and plans', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'nested', 'device.json');
  const run = edge(['profile', '--model', 'tiny', '--quick', '--workers', '2', '--out', file, '--json', '--name', 'test-board']);
  t.equal(run.status, 0, run.stderr);
  const profile = parseProfileText(readFileSync(file, 'utf8'), file);
  t.equal(profile.name, 'test-board');
  t.equal(profile.compute.workers, 2);
  t.match(profile.description, /measured by edge profile .*wasm backend, 2 workers.*tiny 24x24 batch 2.*parallel efficiency measured on 2 workers.*link not measured/);
  checkRates(t, profile);
  checkClasses(t, profile, 'tiny');
  // --json: the same profile and what it was derived from.
  const report = JSON.parse(run.stdout);
  t.same(report.profile, JSON.parse(readFileSync(file, 'utf8')), '--json carries the written profile');
  t.same(report.conv.map((c: { kernel: number; inChannels: number }) => `${c.kernel}/${c.inChannels}`), ['1/16', '3/3', '3/8'], 'one measurement per conv class, by kernel then channels');
  t.equal(report.overhead.samples.length, 4);
  t.equal(report.elementwise.method, 'timed', '--quick times the elementwise passes');
  t.equal(report.parallel.workers, 2);
  t.match(run.stderr, /profile: conv 3x3 from 3 channels \(layer 0\): tile 14x14x3/);
  t.match(run.stderr, /profile written to .*device\.json/);
  const plan = edge(['plan', '--devices', '2', '--model', 'tiny', '--profile', file, '--json']);
  t.equal(plan.status, 0, plan.stderr);
  t.match(JSON.parse(plan.stdout), { ok: true, profile: 'test-board', workers: 2 });
});

t.test('without --out the profile goes to stdout; link flags and --workers 0', async (t) => {
  const run = edge(['profile', '--model', 'tiny', '--input', '16x16', '--quick', '--workers', '0', '--link-mib', '50', '--latency-ms', '0.3', '--cpu-ms-per-mib', '22', '--backend', 'wasm']);
  t.equal(run.status, 0, run.stderr);
  const profile = parseProfileText(run.stdout, 'stdout');
  t.equal(profile.compute.workers, 1, '--workers 0 (main thread) is profiled as one worker');
  t.equal(profile.compute.parallelEfficiency, 1, 'not measured with one worker');
  t.match(profile.link, { mibPerSecond: 50, latencyMs: 0.3, cpuMsPerMiB: 22, maxMessageFloats: 65536 });
  t.match(profile.description, /tiny 16x16.*link 50 MiB\/s, 0\.3 ms per message, 22 CPU ms per MiB as given/);
  checkRates(t, profile);
  t.match(run.stderr, /compute on the main thread/);
});

t.test('bad flags exit 2 naming the flag, before measuring anything', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--workers', 'two'], /--workers must be a non-negative integer, got "two"/],
    [['--link-mib', '0'], /--link-mib must be a positive number, got "0"/],
    [['--latency-ms=-1'], /--latency-ms must be a non-negative number, got "-1"/],
    [['--cpu-ms-per-mib', 'lots'], /--cpu-ms-per-mib must be a non-negative number, got "lots"/],
    [['--backend', 'gpu'], /backend must be one of tensorflow\|wasm\|cpu, got "gpu"/],
    [['--input', '0x5'], /--input must be positive/],
    [['--model', 'no-such-model'], /--model "no-such-model" is neither a file nor a preset/],
    [['--name', ' '], /--name must not be empty/],
    [['--fast'], /Unknown option '--fast'/],
    [['extra'], /Unexpected argument 'extra'/],
  ];
  for (const [args, message] of cases) {
    const run = edge(['profile', ...args]);
    t.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
    t.match(run.stderr, message);
    t.notMatch(run.stderr, /profile: backend/, `${args.join(' ')}: nothing measured`);
  }
  const help = edge(['profile', '--help']);
  t.equal(help.status, 0);
  for (const flag of ['--model', '--input', '--workers', '--backend', '--out', '--quick', '--json', '--link-mib', '--latency-ms', '--cpu-ms-per-mib']) t.match(help.stdout, flag);
});

t.test('edge --help lists profile', async (t) => {
  const run = edge(['--help']);
  t.match(run.stdout, /edge profile \.\.\. {3}measure this device/);
  t.notMatch(run.stdout, /Not built yet/);
});
