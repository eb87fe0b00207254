// Pi-cluster emulator: N real devices (`node dist/edge.js`), each in its own network namespace behind
// a rate-limited veth link and in cgroups with a CPU quota and a memory cap. Cleans up everything it
// created, on success, failure and Ctrl-C. Root only.
//   npm run emulate -- --devices 4 [--rate 100mbit] [--cpus C] [--cpu-period MS] [--memory 1G] [edge flags...]
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseByteSize } from '../src/memory/estimate.js';
import { deviceRuntime, runDevices } from './lib/device-processes.js';
import { DEFAULT_CPU_PERIOD_MS, cfsBandwidth, setUpCluster } from './lib/emulated-cluster.js';

const HELP = `Usage: npm run emulate -- [--devices N] [--rate R] [--cpus C] [--cpu-period MS] [--memory SIZE] [edge flags]

Starts N devices of \`node dist/edge.js\`, each in its own network namespace joined to the others
through a bridge by a veth link shaped with tbf, and in cgroups with a CPU quota and a memory cap.
  --devices N     devices (default 4)
  --rate R        link rate in each direction, tc syntax (default 100mbit: Pi 3 Ethernet)
  --cpus C        CPU cores per device (default: this machine's cores / N, so devices never contend)
  --cpu-period MS the quota's period (default ${DEFAULT_CPU_PERIOD_MS}; a device out of quota waits for the next period)
  --memory SIZE   memory cap per device (default 1G: a Pi 3)
  --lean-runtime  start devices as MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 (less memory)
Needs root. Other flags go to every device (see node dist/edge.js --help); --peers and --rank are set here.`;

// Whoever reads our output may go away (a benchmark that was stopped): the write errors must not end
// this process before the clean-up in `finally` below (runDevices stops the devices on them).
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

const argv = process.argv.slice(2);
if (argv.includes('--help')) {
  console.log(HELP);
  process.exit(0);
}
const own = new Map<string, string>();
const edgeFlags: string[] = [];
let lean = false;
for (let i = 0; i < argv.length; i++) {
  const flag = argv[i]!;
  if (flag === '--lean-runtime') lean = true;
  else if (['--devices', '--rate', '--cpus', '--cpu-period', '--memory'].includes(flag)) {
    if (argv[i + 1] === undefined) {
      console.error(`emulator: ${flag} needs a value`);
      process.exit(2);
    }
    own.set(flag, argv[++i]!);
  } else edgeFlags.push(flag);
}
const devices = Number(own.get('--devices') ?? 4);
let spec;
try {
  spec = {
    devices,
    rate: own.get('--rate') ?? '100mbit',
    cpus: Number(own.get('--cpus') ?? availableParallelism() / devices),
    cpuPeriodMs: Number(own.get('--cpu-period') ?? DEFAULT_CPU_PERIOD_MS),
    memoryBytes: parseByteSize(own.get('--memory') ?? '1G'),
    runId: randomBytes(3).toString('hex'),
  };
} catch (error) {
  console.error(`emulator: ${(error as Error).message}`);
  process.exit(2);
}
let cluster;
try {
  cluster = setUpCluster(spec);
} catch (error) {
  console.error(`emulator: ${(error as Error).message}`);
  process.exit(2);
}
const edge = join(dirname(fileURLToPath(import.meta.url)), 'edge.js');
const runtime = deviceRuntime(lean);
const secret = randomBytes(16).toString('hex');
console.error(`emulator: ${devices} devices, ${spec.cpus.toFixed(2)} cores (period ${cfsBandwidth(spec).periodUs / 1000} ms), ${own.get('--memory') ?? '1G'} and a ${spec.rate} link each; peers ${cluster.peers}`);
let code = 1;
try {
  code = await runDevices({
    devices,
    name: 'emulator',
    command: (rank) => ({
      ...cluster.wrap(rank, [process.execPath, ...runtime.nodeFlags, edge, '--peers', cluster.peers, '--rank', String(rank), '--listen', '0.0.0.0', ...edgeFlags]),
      env: { ...process.env, ...runtime.env, EDGE_SECRET: secret },
    }),
  });
  for (let rank = 0; rank < devices; rank++) console.error(`emulator: rank ${rank} peak memory (cgroup) ${(cluster.peakMemoryBytes(rank) / 2 ** 20).toFixed(1)} MiB`);
} finally {
  cluster.tearDown();
}
process.exit(code);
