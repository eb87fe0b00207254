// The Pi-cluster emulator: the network it builds (pure), and real runs as root: devices train in
// their namespaces and cgroups, and everything is removed afterwards, also when a device is killed
// by its memory cap or the reader of its output goes away.
import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { type EmulatorSpec, addressOf, cfsBandwidth, networkCommands, validateSpec } from '../../tools/lib/emulated-cluster.js';
import { bundleEnv } from '../helpers/cluster.js';

const spec: EmulatorSpec = { devices: 2, rate: '100mbit', cpus: 0.5, memoryBytes: 1 << 30, runId: 'ab12' };

t.test('network commands: a switch namespace with a bridge, one shaped veth link per device', async (t) => {
  const commands = networkCommands(spec).map((c) => c.join(' '));
  t.ok(commands.includes('ip netns add efab12-switch'));
  t.ok(commands.includes('ip -n efab12-switch link add br0 type bridge'));
  for (const rank of [0, 1]) {
    t.ok(commands.includes(`ip netns add efab12-dev${rank}`));
    t.ok(commands.includes(`ip -n efab12-dev${rank} addr add ${addressOf(rank)}/16 dev eth0`));
    t.ok(commands.includes(`ip netns exec efab12-dev${rank} tc qdisc add dev eth0 root tbf rate 100mbit burst 64kb latency 50ms`), 'shaped towards the switch');
    t.ok(commands.includes(`ip netns exec efab12-switch tc qdisc add dev efab12s${rank} root tbf rate 100mbit burst 64kb latency 50ms`), 'shaped towards the device');
  }
  t.ok(commands.every((c) => !/ip (link|addr) /.test(c) || / -n |netns/.test(c)), 'no command touches the host namespace except creating veth pairs straight into namespaces');
  t.equal(addressOf(0), '10.88.0.1');
  t.equal(addressOf(255), '10.88.1.0');
});

t.test('bad specs are refused with the value', async (t) => {
  t.throws(() => validateSpec({ ...spec, rate: 'fast' }), /link rate must look like 100mbit, got "fast"/);
  t.throws(() => validateSpec({ ...spec, devices: 0 }), /devices must be 1..250, got 0/);
  t.throws(() => validateSpec({ ...spec, cpus: 0 }), /CPU cores per device must be positive, got 0/);
  t.throws(() => validateSpec({ ...spec, memoryBytes: 1000 }), /at least 64 MiB/);
  t.throws(() => validateSpec({ ...spec, cpuPeriodMs: 0.5 }), /CPU period must be 1..1000 ms, got 0.5/);
  t.doesNotThrow(() => validateSpec({ ...spec, cpuPeriodMs: 100 }));
});

t.test('the CFS period stretches where the quota would fall under the kernel minimum of 1 ms', async (t) => {
  t.same(cfsBandwidth({ ...spec, cpus: 0.3 }), { periodUs: 10_000, quotaUs: 3000 });
  t.same(cfsBandwidth({ ...spec, cpus: 0.3, cpuPeriodMs: 100 }), { periodUs: 100_000, quotaUs: 30_000 });
  t.same(cfsBandwidth({ ...spec, cpus: 0.075 }), { periodUs: 13_334, quotaUs: 1000 });
  t.same(cfsBandwidth({ ...spec, cpus: 2 }), { periodUs: 10_000, quotaUs: 20_000 });
});

const leftovers = () => ({
  namespaces: execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => /^ef[0-9a-f]{6}-/.test(l)),
  cgroups: ['cpu', 'memory'].flatMap((c) => (existsSync(`/sys/fs/cgroup/${c}`) ? readdirSync(`/sys/fs/cgroup/${c}`).filter((d) => d.startsWith('edgefuse-')) : [])),
});
/** Root, and allowed to create network namespaces and cgroups (a container may be neither). */
function emulationUnavailable(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  const probe = `efprobe${process.pid % 100000}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  } catch {
    return 'cannot create network namespaces here';
  }
  if (!existsSync('/sys/fs/cgroup/cpu/cgroup.procs') || !existsSync('/sys/fs/cgroup/memory/cgroup.procs')) return 'no cgroup v1 cpu and memory controllers';
  return false;
}
const unavailable = emulationUnavailable();

t.test('as root: 3 emulated devices train and leave nothing behind', { skip: unavailable }, async (t) => {
  // Lean runtime: the flag and the variable reach the device processes through namespace and cgroup.
  const run = spawnSync(process.execPath, ['dist/emulator.js', '--devices', '3', '--lean-runtime', '--model', 'tiny', '--steps', '2'], { encoding: 'utf8', env: bundleEnv(), timeout: 180_000 });
  t.equal(run.status, 0, 'the emulator exits 0');
  if (run.status !== 0) t.comment(run.stderr.slice(-2000));
  t.match(run.stderr, /emulator: 3 devices, [\d.]+ cores \(period 10 ms\), 1G and a 100mbit link each; peers 10\.88\.0\.1:9000,10\.88\.0\.2:9000,10\.88\.0\.3:9000/);
  t.match(run.stderr, /\[rank 2\] done: 2 steps/);
  t.equal((run.stderr.match(/\] runtime: .*flags --max-semi-space-size=1, MALLOC_ARENA_MAX 1$/gm) ?? []).length, 3, 'every device runs lean');
  t.match(run.stderr, /emulator: rank 0 peak memory \(cgroup\) [\d.]+ MiB/);
  t.same(leftovers(), { namespaces: [], cgroups: [] }, 'no namespace or cgroup left');
});

t.test('as root: a device killed by its memory cap stops the run, and the cleanup still happens', { skip: unavailable }, async (t) => {
  const run = spawnSync(process.execPath, ['dist/emulator.js', '--devices', '2', '--memory', '120M', '--model', 'yolov2-front', '--input', '160x160', '--steps', '3', '--memory-limit', '4G', '--peer-timeout', '3'],
    { encoding: 'utf8', env: bundleEnv(), timeout: 180_000 });
  t.not(run.status, 0, 'the emulator reports the failure');
  t.match(run.stderr, /emulator: stopping all devices: rank \d failed/);
  t.same(leftovers(), { namespaces: [], cgroups: [] }, 'no namespace or cgroup left');
});

t.test('as root: when the reader of its output goes away, the emulator stops the devices and still cleans up', { skip: unavailable }, async (t) => {
  const child = spawn(process.execPath, ['dist/emulator.js', '--devices', '2', '--model', 'tiny', '--steps', '200'], { stdio: ['ignore', 'pipe', 'pipe'], env: bundleEnv() });
  let seen = '';
  child.stderr.on('data', (chunk: Buffer) => {
    seen += chunk.toString();
    // Training is under way: close the pipes as a stopped benchmark would.
    if (/\[rank \d\] step 2\//.test(seen)) {
      child.stdout.destroy();
      child.stderr.destroy();
    }
  });
  const [code] = await once(child, 'exit') as [number | null];
  t.equal(code, 141, 'the devices were stopped, not run to the end');
  t.same(leftovers(), { namespaces: [], cgroups: [] }, 'no namespace or cgroup left');
});
