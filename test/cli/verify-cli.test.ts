// The built CLI as users run it: real processes, exit codes and messages.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const edge = (args: string[]) => spawnSync(process.execPath, ['dist/edge.js', ...args], { encoding: 'utf8' });

t.test('a passing configuration prints JSON with ok and maxRelError', async (t) => {
  const run = edge(['verify', '--model', 'tiny', '--grid', '3x2', '--forward-groups', '0,2', '--backward-groups', 'all', '--batch', '2', '--backend', 'wasm', '--json']);
  t.equal(run.status, 0, run.stderr);
  const report = JSON.parse(run.stdout);
  t.equal(report.ok, true);
  t.ok(report.maxRelError < 1e-4);
  t.equal(report.backend, 'wasm');
  t.equal(report.devices, 6);
});

t.test('the cpu backend gives the same verdict', async (t) => {
  const run = edge(['verify', '--model', 'tiny', '--grid', '2x2', '--forward-groups', 'all', '--backend', 'cpu', '--json']);
  t.equal(run.status, 0, run.stderr);
  t.equal(JSON.parse(run.stdout).backend, 'cpu');
});

t.test('out of tolerance exits 1', async (t) => {
  const run = edge(['verify', '--model', 'tiny', '--grid', '2x2', '--tolerance', '1e-15']);
  t.equal(run.status, 1, run.stderr);
  t.match(run.stdout, /MISMATCH/);
});

t.test('bad input exits 2 naming the problem', async (t) => {
  const dir = t.testdir({ 'odd.cfg': '[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=2\nsize=3\nactivation=swish\n' });
  const cases: [string[], RegExp][] = [
    [['verify', '--model', 'tiny'], /needs --grid/],
    [['verify', '--grid', '2x2'], /needs --model/],
    [['verify', '--model', 'nope', '--grid', '2x2'], /neither a file nor a preset/],
    [['verify', '--model', 'tiny', '--grid', '30x2'], /grid 30x2 is larger than map/],
    [['verify', '--model', 'tiny', '--grid', '2x2', '--forward-groups', '0,9'], /layer 9 is out of range 0..4/],
    [['verify', '--model', 'tiny', '--grid', '2x2', '--backward-groups', '3,1'], /must increase/],
    [['verify', '--model', 'tiny', '--grid', '2x2', '--devices', '9'], /devices must be between 1 and the 4 tiles/],
    [['verify', '--model', 'tiny', '--grid', '2x2', '--backend', 'gpu'], /backend must be one of/],
    [['verify', '--model', 'tiny', '--grid', '2x2', '--batch', '0'], /--batch must be a positive integer/],
    [['verify', '--model', 'tiny', '--grid', '2x2', '--input', 'big'], /--input must look like HxW/],
    [['verify', '--model', 'tiny', '--grid', '2x2', '--bogus'], /Unknown option '--bogus'/],
    [['verify', '--model', join(dir, 'odd.cfg'), '--grid', '2x2'], /odd\.cfg:8: "activation" must be one of/],
    [['train'], /unknown command "train"/],
  ];
  for (const [args, pattern] of cases) {
    const run = edge(args);
    t.equal(run.status, 2, `${args.join(' ')} exits 2`);
    t.match(run.stderr, pattern);
    t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
  }
});

t.test('help', async (t) => {
  const run = edge(['verify', '--help']);
  t.equal(run.status, 0);
  for (const flag of ['--model', '--grid', '--input', '--forward-groups', '--backward-groups', '--batch', '--backend', '--json']) t.match(run.stdout, flag);
  t.equal(edge(['--help']).status, 0);
});
