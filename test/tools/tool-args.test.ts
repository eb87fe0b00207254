// The tools answer --help with their purpose and options, and refuse an unknown option with one
// line and the usage (exit 2), not a stack trace. Real processes of the built tools.
import t from 'tap';
import { spawnSync } from 'node:child_process';

const run = (tool: string, ...args: string[]) => spawnSync(process.execPath, [`dist/${tool}.js`, ...args], { encoding: 'utf8', timeout: 60_000 });

t.test('--help prints the purpose and every option with its default', async (t) => {
  for (const tool of ['bench-cluster', 'bench-training', 'bench-runtime', 'bench-kernels', 'bench-transport', 'plain-tfjs-train', 'make-shapes', 'region-anchors', 'train-detector']) {
    const r = run(tool, '--help');
    t.equal(r.status, 0, `${tool} --help exits 0`);
    t.match(r.stdout, new RegExp(`^Usage: node dist/${tool}\\.js \\[options\\]\\n\\n\\S`), `${tool}: usage line and purpose`);
  }
  t.match(run('bench-cluster', '--help').stdout, /--repeats X\s+\[1\]/);
});

t.test('an unknown option or a missing value is one message and the usage, exit 2', async (t) => {
  const unknown = run('bench-training', '--bogus');
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /^bench-training: Unknown option '--bogus'/);
  t.match(unknown.stderr, /Usage: node dist\/bench-training\.js/);
  t.notMatch(unknown.stderr, /at .*\.js:\d+/, 'no stack trace');
  const missing = run('plain-tfjs-train', '--steps');
  t.equal(missing.status, 2);
  t.match(missing.stderr, /--steps/);
});

t.test('bench-training checks its configs before running anything', async (t) => {
  for (const bad of ['4:2x2:each:fast', '4:2x2:each:lean:lean', '4:2x2:each:workers=x', '1:1x1:all,4:2x2:each:workers=0:workers=1']) {
    const r = run('bench-training', '--configs', bad);
    t.not(r.status, 0);
    t.match(r.stderr, /a config is devices:RxC:grouping\[:lean\]\[:workers=N\], got "/, bad);
    t.notMatch(r.stderr, /plain-tfjs-train/, 'the plain tfjs run did not start');
  }
});
