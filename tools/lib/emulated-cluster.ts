// A cluster of Pi-class devices on this machine: each device in its own network namespace with one
// veth link to a bridge (in a switch namespace of its own, so the host's network is never touched),
// the link shaped with tbf in both directions (default 100 Mbit/s, Pi 3 Ethernet), and each device in
// cgroup-v1 cpu and memory groups (a CPU quota and a memory cap, default 1 GiB). Everything carries
// one run id and is removed again, also when the run fails. Needs root.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface EmulatorSpec {
  readonly devices: number;
  /** tc rate, e.g. "100mbit". */
  readonly rate: string;
  /** CPU cores per device (cfs quota / period). */
  readonly cpus: number;
  /**
   * The CFS period in ms (default DEFAULT_CPU_PERIOD_MS). A throttled device waits for the next
   * period: with the kernel's 100 ms, a device at 0.3 cores can stall 70 ms whenever its scheduler
   * thread must answer a message, which a Pi (slow but never stopped) does not do.
   */
  readonly cpuPeriodMs?: number;
  readonly memoryBytes: number;
  /** Short unique id: names of namespaces, links and cgroups derive from it. */
  readonly runId: string;
}

export const PEER_PORT = 9000;
export const DEFAULT_CPU_PERIOD_MS = 10;
const SUBNET = '10.88';
const CGROUP_ROOT = '/sys/fs/cgroup';

export const namespaceOf = (spec: EmulatorSpec, rank: number): string => `ef${spec.runId}-dev${rank}`;
export const switchNamespace = (spec: EmulatorSpec): string => `ef${spec.runId}-switch`;
export const addressOf = (rank: number): string => `${SUBNET}.${Math.floor((rank + 1) / 256)}.${(rank + 1) % 256}`;
export const cgroupOf = (spec: EmulatorSpec, controller: 'cpu' | 'memory', rank: number): string => join(CGROUP_ROOT, controller, `edgefuse-${spec.runId}`, `dev${rank}`);

export function validateSpec(spec: EmulatorSpec): void {
  if (!Number.isInteger(spec.devices) || spec.devices < 1 || spec.devices > 250) throw new Error(`devices must be 1..250, got ${spec.devices}`);
  if (!/^\d+(\.\d+)?(bit|kbit|mbit|gbit)$/.test(spec.rate)) throw new Error(`link rate must look like 100mbit, got "${spec.rate}"`);
  if (!(spec.cpus > 0)) throw new Error(`CPU cores per device must be positive, got ${spec.cpus}`);
  const period = spec.cpuPeriodMs ?? DEFAULT_CPU_PERIOD_MS;
  if (!(period >= 1 && period <= 1000)) throw new Error(`CPU period must be 1..1000 ms, got ${period}`);
  if (!(spec.memoryBytes >= 64 << 20)) throw new Error(`memory per device must be at least 64 MiB, got ${spec.memoryBytes} bytes`);
  if (!/^[0-9a-z]{1,6}$/.test(spec.runId)) throw new Error(`run id must be 1-6 lowercase letters or digits, got "${spec.runId}"`);
}

/**
 * The cgroup's CFS period and quota in µs. The kernel refuses a quota under 1 ms, so a device with
 * few cores gets a longer period than asked for (0.075 cores: 13.4 ms instead of 10).
 */
export function cfsBandwidth(spec: EmulatorSpec): { periodUs: number; quotaUs: number } {
  const periodUs = Math.max(Math.round((spec.cpuPeriodMs ?? DEFAULT_CPU_PERIOD_MS) * 1000), Math.ceil(MIN_QUOTA_US / spec.cpus));
  return { periodUs, quotaUs: Math.max(MIN_QUOTA_US, Math.round(spec.cpus * periodUs)) };
}
const MIN_QUOTA_US = 1000;

/** The `ip`/`tc` commands that build the network, in order (pure: the tests check them). */
export function networkCommands(spec: EmulatorSpec): string[][] {
  const sw = switchNamespace(spec);
  const commands: string[][] = [
    ['ip', 'netns', 'add', sw],
    ['ip', '-n', sw, 'link', 'add', 'br0', 'type', 'bridge'],
    ['ip', '-n', sw, 'link', 'set', 'br0', 'up'],
  ];
  // tbf's burst must hold at least one rate-period of bytes; 64 KiB works from 10 to 1000 Mbit/s.
  const shape = (ns: string, dev: string) => ['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', spec.rate, 'burst', '64kb', 'latency', '50ms'];
  for (let rank = 0; rank < spec.devices; rank++) {
    const ns = namespaceOf(spec, rank);
    const device = `ef${spec.runId}d${rank}`;
    const port = `ef${spec.runId}s${rank}`;
    commands.push(
      ['ip', 'netns', 'add', ns],
      ['ip', 'link', 'add', device, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', sw],
      ['ip', '-n', ns, 'link', 'set', device, 'name', 'eth0'],
      ['ip', '-n', ns, 'addr', 'add', `${addressOf(rank)}/16`, 'dev', 'eth0'],
      ['ip', '-n', ns, 'link', 'set', 'eth0', 'up'],
      ['ip', '-n', ns, 'link', 'set', 'lo', 'up'],
      ['ip', '-n', sw, 'link', 'set', port, 'master', 'br0'],
      ['ip', '-n', sw, 'link', 'set', port, 'up'],
      shape(ns, 'eth0'),
      shape(sw, port),
    );
  }
  return commands;
}

export interface EmulatedCluster {
  readonly spec: EmulatorSpec;
  /** `--peers` for the devices. */
  readonly peers: string;
  /** Command line that runs `args` on device `rank`: inside its namespace and cgroups. */
  wrap(rank: number, args: readonly string[]): { file: string; args: string[] };
  /** Peak memory use of device `rank` so far, from its memory cgroup. */
  peakMemoryBytes(rank: number): number;
  tearDown(): void;
}

function run(command: readonly string[]): void {
  try {
    execFileSync(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`emulator: "${command.join(' ')}" failed${stderr ? `: ${stderr}` : ''}`);
  }
}

export function setUpCluster(spec: EmulatorSpec): EmulatedCluster {
  validateSpec(spec);
  if (process.getuid?.() !== 0) throw new Error('the emulator needs root (network namespaces and cgroups)');
  for (const controller of ['cpu', 'memory'] as const) {
    if (!existsSync(join(CGROUP_ROOT, controller, 'cgroup.procs'))) throw new Error(`the emulator needs the cgroup v1 ${controller} controller at ${join(CGROUP_ROOT, controller)}`);
  }
  const cluster: EmulatedCluster = {
    spec,
    peers: Array.from({ length: spec.devices }, (_, rank) => `${addressOf(rank)}:${PEER_PORT}`).join(','),
    wrap: (rank, args) => {
      const join = (c: 'cpu' | 'memory') => `echo $$ > ${cgroupOf(spec, c, rank)}/cgroup.procs`;
      // The shell enters the cgroups, then becomes the device inside its namespace.
      const quoted = args.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
      return { file: 'sh', args: ['-c', `${join('cpu')} && ${join('memory')} && exec ip netns exec ${namespaceOf(spec, rank)} ${quoted}`] };
    },
    peakMemoryBytes: (rank) => Number(readFileSync(join(cgroupOf(spec, 'memory', rank), 'memory.max_usage_in_bytes'), 'utf8')),
    tearDown: () => tearDown(spec),
  };
  try {
    for (const command of networkCommands(spec)) run(command);
    for (let rank = 0; rank < spec.devices; rank++) {
      const cpu = cgroupOf(spec, 'cpu', rank);
      const memory = cgroupOf(spec, 'memory', rank);
      mkdirSync(cpu, { recursive: true });
      mkdirSync(memory, { recursive: true });
      const { periodUs, quotaUs } = cfsBandwidth(spec);
      writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(periodUs));
      writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(quotaUs));
      writeFileSync(join(memory, 'memory.limit_in_bytes'), String(spec.memoryBytes));
    }
  } catch (error) {
    tearDown(spec);
    throw error;
  }
  return cluster;
}

/** Removes whatever of the run exists; safe to call twice and after a partial set-up. */
export function tearDown(spec: EmulatorSpec): void {
  const quiet = (command: string[]) => {
    try {
      execFileSync(command[0]!, command.slice(1), { stdio: 'ignore' });
    } catch {
      // already gone
    }
  };
  // Deleting a namespace removes its veth ends (and so their peers in the switch namespace).
  for (let rank = 0; rank < spec.devices; rank++) quiet(['ip', 'netns', 'del', namespaceOf(spec, rank)]);
  quiet(['ip', 'netns', 'del', switchNamespace(spec)]);
  for (const controller of ['cpu', 'memory'] as const) {
    for (let rank = 0; rank < spec.devices; rank++) {
      const dir = cgroupOf(spec, controller, rank);
      // A cgroup can be removed only once its processes are gone.
      for (let attempt = 0; attempt < 50 && existsSync(dir); attempt++) {
        try {
          rmdirSync(dir);
        } catch {
          execFileSync('sleep', ['0.1']);
        }
      }
    }
    try {
      rmdirSync(join(CGROUP_ROOT, controller, `edgefuse-${spec.runId}`));
    } catch {
      // not created, or busy: reported by the caller's checks
    }
  }
}
