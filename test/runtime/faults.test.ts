// A device killed mid-run makes the others stop within 10 s naming it, and restarting everyone with
// --resume reaches the weights of an uninterrupted run. Telemetry parses; oversized plans are refused.
import t from 'tap';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/fused/backend.js';
import { presetCfg, withInputSize } from '../../src/model/presets.js';
import { decodeWeights, initialParams } from '../../src/model/weights.js';
import { readLatest } from '../../src/train/checkpoint.js';
import { bundleEnv, freePorts } from '../helpers/cluster.js';
import { paramsRelativeError, referenceTraining } from '../helpers/reference-training.js';

await initBackend('wasm');
const STEPS = 8;
const SEED = 5;

interface Device { child: ChildProcess; log: () => string; exit: Promise<number | null>; exitedAt: () => number }

function startDevice(peers: string, rank: number, flags: string[]): Device {
  const child = spawn(process.execPath, ['dist/edge.js', '--peers', peers, '--rank', String(rank), ...flags], { env: { ...bundleEnv(), EDGE_SECRET: 'fault-test' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  let exitedAt = 0;
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => { exitedAt = Date.now(); resolve(code); }));
  return { child, log: () => log, exit, exitedAt: () => exitedAt };
}

const waitFor = (device: Device, pattern: RegExp, timeoutMs: number) => new Promise<void>((resolve, reject) => {
  const started = Date.now();
  const check = setInterval(() => {
    if (pattern.test(device.log())) { clearInterval(check); resolve(); }
    else if (Date.now() - started > timeoutMs) { clearInterval(check); reject(new Error(`no ${pattern} in ${device.log().slice(-500)}`)); }
  }, 50);
});

const httpGet = (url: string) => new Promise<{ status: number; body: string }>((resolve, reject) =>
  get(url, (res) => { let body = ''; res.on('data', (d) => (body += d)); res.on('end', () => resolve({ status: res.statusCode ?? 0, body })); }).on('error', reject));

t.test('kill, detect, resume', async (t) => {
  const ports = await freePorts(6);
  const peers = ports.slice(0, 3).map((p) => `127.0.0.1:${p}`).join(',');
  const dir = mkdtempSync(join(tmpdir(), 'edgefuse-fault-'));
  const flags = (rank: number, resume: boolean) => [
    '--model', 'yolov2-front', '--input', '64x64', '--batch', '1', '--grid', '3x1', '--forward-groups', '0,8', '--steps', String(STEPS), '--seed', String(SEED),
    '--checkpoint', join(dir, `rank${rank}`), '--checkpoint-every', '2', '--peer-timeout', '3', '--metrics-port', String(ports[3 + rank]), ...(resume ? ['--resume'] : []),
  ];
  const devices = [0, 1, 2].map((r) => startDevice(peers, r, flags(r, false)));
  await waitFor(devices[0]!, /step 3\/8/, 120_000);

  // Telemetry while training.
  const metrics = await httpGet(`http://127.0.0.1:${ports[3]}/metrics`);
  t.equal(metrics.status, 200);
  const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? (-?[0-9.]+(e[-+]?[0-9]+)?|NaN)$/;
  const lines = metrics.body.trim().split('\n');
  t.ok(lines.every((l) => l.startsWith('# HELP ') || l.startsWith('# TYPE ') || sample.test(l)), `every /metrics line is Prometheus text:\n${lines.filter((l) => !l.startsWith('#') && !sample.test(l)).join('\n')}`);
  t.match(metrics.body, /edgefuse_step\{rank="0"\} \d+/);
  t.match(metrics.body, /edgefuse_phase_seconds\{rank="0",phase="exchangeWait"\} [0-9.e-]+/);
  t.match(metrics.body, /edgefuse_memory_bytes\{rank="0",kind="wasm_heap"\} \d+/);
  t.match(metrics.body, /edgefuse_peer_bytes_total\{rank="0",peer="1",direction="sent"\} \d+/);
  t.match(metrics.body, /edgefuse_link_round_trip_ms\{rank="0",peer="2"\} [0-9.e-]+/, 'links measured at start');
  const status = JSON.parse((await httpGet(`http://127.0.0.1:${ports[3]}/status`)).body);
  t.equal(status.state, 'training');
  t.equal(status.backend, 'wasm');
  t.ok(status.memory.rssBytes > 0 && status.machine.memoryTotalBytes > 0);
  t.same(status.links.map((l: { peer: number; error: string | null }) => [l.peer, l.error]), [[1, null], [2, null]], '/status: a measured link to each peer');

  const killedAt = Date.now();
  devices[2]!.child.kill('SIGKILL');
  const codes = await Promise.all([devices[0]!.exit, devices[1]!.exit]);
  t.same(codes, [1, 1], 'the survivors stop with an error');
  for (const r of [0, 1]) {
    t.match(devices[r]!.log(), /edge: peer 2 \(127\.0\.0\.1:\d+\)/, `rank ${r} names the dead peer`);
    t.ok(devices[r]!.exitedAt() - killedAt < 10_000, `rank ${r} stopped ${devices[r]!.exitedAt() - killedAt} ms after the kill`);
  }
  const checkpointed = readLatest(join(dir, 'rank0'))!.step;
  t.ok(checkpointed >= 2 && checkpointed < STEPS, `a checkpoint of step ${checkpointed} survives`);

  const resumed = [0, 1, 2].map((r) => startDevice(peers, r, flags(r, true)));
  const resumedCodes = await Promise.all(resumed.map((d) => d.exit));
  t.same(resumedCodes, [0, 0, 0], 'every device finishes after --resume');
  if (resumedCodes.some((c) => c !== 0)) t.comment(resumed.map((d) => d.log().slice(-800)).join('\n'));
  t.match(resumed[0]!.log(), new RegExp(`resumed from .* at step ${checkpointed}`));
  const net = { ...withInputSize(presetCfg('yolov2-front').network, 64, 64) };
  const batched = { ...net, hyper: { ...net.hyper, batch: 1 } };
  const reference = await referenceTraining(batched, initialParams(batched, SEED), STEPS, SEED);
  for (const r of [0, 1, 2]) {
    const meta = readLatest(join(dir, `rank${r}`))!;
    t.equal(meta.step, STEPS);
    const { params } = decodeWeights(batched, new Uint8Array(readFileSync(join(dir, `rank${r}`, meta.weightsFile))));
    const error = paramsRelativeError(params, reference);
    t.ok(error < 1e-4, `rank ${r} after resume equals uninterrupted training: ${error.toExponential(2)}`);
  }
});

t.test('a plan over --memory-limit is refused before any training', async (t) => {
  const port = (await freePorts(1))[0]!;
  const run = spawnSync(process.execPath, ['dist/edge.js', '--peers', `127.0.0.1:${port}`, '--model', 'yolov2-front', '--forward-groups', 'each', '--memory-limit', '300M', '--metrics-port', '0'], { encoding: 'utf8', env: bundleEnv() });
  t.equal(run.status, 2);
  t.match(run.stderr, /the plan needs about [\d.]+ (MiB|GiB) on device 0, over --memory-limit 300\.0 MiB/);
  t.match(run.stderr, /arena \(every planned step buffer\)/);
  t.notMatch(run.stderr, /step 1\//);
});

t.test('runtime flags are checked', async (t) => {
  const port = (await freePorts(1))[0]!;
  const cases: [string[], RegExp][] = [
    [['--peers', `127.0.0.1:${port},127.0.0.1:${port + 1}`, '--rank', '0', '--model', 'tiny'], /needs --secret or EDGE_SECRET/],
    [['--peers', `127.0.0.1:${port},127.0.0.1:${port + 1}`, '--model', 'tiny', '--secret', 's'], /several --peers entries are addresses of this machine/],
    [['--peers', 'nohost'], /must look like host:port/],
    [['--peers', `127.0.0.1:${port}`, '--resume'], /--resume needs --checkpoint/],
    [['--peers', `127.0.0.1:${port}`, '--front', '40'], /--front 40: the model has 16/],
    [['--peers', `127.0.0.1:${port}`, '--memory-limit', 'lots'], /memory size must look like/],
  ];
  for (const [args, pattern] of cases) {
    const run = spawnSync(process.execPath, ['dist/edge.js', ...args], { encoding: 'utf8', env: { ...bundleEnv(), EDGE_SECRET: '' } });
    t.equal(run.status, 2, args.join(' '));
    t.match(run.stderr, pattern);
  }
  const help = spawnSync(process.execPath, ['dist/edge.js', '--help'], { encoding: 'utf8' });
  for (const flag of ['--peers', '--rank', '--model', '--weights', '--front', '--grid', '--forward-groups', '--backward-groups', '--batch', '--steps', '--learning-rate', '--backend', '--memory-limit', '--secret', '--listen', '--metrics-port', '--checkpoint', '--checkpoint-every', '--resume']) t.match(help.stdout, flag);
});
