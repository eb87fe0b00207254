// Local cluster launcher: starts N devices of `edge --peers ...` on loopback, prefixes their logs with
// the rank, shows progress, and stops them all on Ctrl-C or on the first failure (with its message).
//   npm run cluster -- --devices 4 [any edge flag, e.g. --model tiny --steps 20]
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdirSync } from 'node:fs';
import { deviceRuntime, runDevices } from './lib/device-processes.js';
import { JobProgress } from './lib/job-progress.js';
import { summarise } from './lib/job-summary.js';

// The default job: a detector (the YOLOv2 front at 96x96, a small head, [region]) learning the bundled
// shapes set, evaluated on its validation images before, every 50 steps and at the end. Its grouping
// is fixed to `each`: the planner's default profile describes devices with a core each and 100 Mbit/s
// links, while these 4 devices share this machine's cores over loopback, where its choice
// (0,8,10,12,14,16 / 0,12,14,16: more compute, fewer bytes) ran 1.6x slower than `each`.
const DEFAULT_JOB = [
  '--model', 'yolov2-shapes', '--data', 'data/shapes/train.txt', '--valid', 'data/shapes/valid.txt',
  '--steps', '200', '--eval-every', '50', '--checkpoint-every', '50', '--forward-groups', 'each',
];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as import('node:net').AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const argv = process.argv.slice(2);
if (argv.includes('--help')) {
  console.log('Usage: npm run cluster -- [--devices N] [--lean-runtime] [edge flags]\n\nStarts N devices (default 4) of `node dist/edge.js --peers ...` on loopback.\n' +
    '--lean-runtime starts them as `MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 dist/edge.js`: about 45 MiB less per device.\n' +
    `Without edge flags it runs the default job: ${DEFAULT_JOB.join(' ')}.\nSee node dist/edge.js --help for the flags.`);
  process.exit(0);
}
// --lean-runtime: one malloc arena and 1 MiB semi-spaces per device process (see deviceRuntime).
const lean = argv.includes('--lean-runtime');
const launcherArgv = argv.filter((a) => a !== '--lean-runtime');
const at = launcherArgv.indexOf('--devices');
const devices = at >= 0 ? Number(launcherArgv[at + 1]) : 4;
if (!Number.isInteger(devices) || devices < 1) {
  console.error(`cluster: --devices must be a positive integer, got "${launcherArgv[at + 1]}"`);
  process.exit(2);
}
const edgeFlags = at >= 0 ? [...launcherArgv.slice(0, at), ...launcherArgv.slice(at + 2)] : launcherArgv;
// The default job keeps its logs, checkpoints and reports in a run directory and shows a progress
// bar and a summary; an explicit job shows every device's log as it comes.
const runDir = edgeFlags.length > 0 ? null : join('runs', `default-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);
if (runDir) mkdirSync(runDir, { recursive: true });
const flags = runDir
  ? [...DEFAULT_JOB, '--checkpoint', join(runDir, 'rank{rank}'), '--report', join(runDir, 'report-rank{rank}.json')]
  : edgeFlags;
const ports: number[] = [];
while (ports.length < devices) {
  const p = await freePort();
  if (!ports.includes(p) && p + 1000 < 65536) ports.push(p);
}
const peers = ports.map((p) => `127.0.0.1:${p}`).join(',');
const secret = randomBytes(16).toString('hex');
const edge = join(dirname(fileURLToPath(import.meta.url)), 'edge.js');
const runtime = deviceRuntime(lean);
const envText = Object.entries(runtime.env).map(([k, v]) => `${k}=${v} `).join('');
console.error(`cluster: ${devices} device${devices === 1 ? '' : 's'} on ${peers}\ncluster: ${envText}node ${[...runtime.nodeFlags, ''].join(' ')}dist/edge.js --peers ${peers} --rank I ${flags.join(' ')}`);

const progress = runDir ? new JobProgress(runDir, devices) : null;
const code = await runDevices({
  devices,
  name: 'cluster',
  command: (rank) => ({ file: process.execPath, args: [...runtime.nodeFlags, edge, '--peers', peers, '--rank', String(rank), ...flags], env: { ...process.env, ...runtime.env, EDGE_SECRET: secret } }),
  ...(progress ? { onLine: (rank: number, line: string) => progress.line(rank, line) } : {}),
});
if (progress) await progress.close();
if (runDir && code === 0) console.error(summarise(runDir, devices));
process.exit(code);
