// The cluster regression suite. On real boards every board runs this same file with
//   EDGE_PEERS=host:port,host:port,... EDGE_RANK=i [EDGE_SECRET=s] [EDGE_LINK_MBIT=100] npx tap test/cluster/board.test.ts
// and checks, as its own assertions: preflight (Node, native uWebSockets.js, backend, free memory
// against the plan, clock skew, link latency and goodput), that distributed training equals what
// this board computes alone, that all boards hold the same weights, that memory stayed within the
// plan, and that a killed peer is reported by the others. Without EDGE_PEERS the file starts a
// cluster of 3 such processes itself: each in its own network namespace behind a 100 Mbit/s link
// and in cgroups when it can (root), else on loopback; each child runs this file as a board.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync } from 'node:fs';
import { initBackend } from '../../src/fused/backend.js';
import { createDeviceRuntime } from '../../src/loop/device-runtime.js';
import { planHash, planValidator } from '../../src/loop/plan-messages.js';
import { train, weightsChecksum } from '../../src/loop/trainer.js';
import { estimateDeviceMemory } from '../../src/memory/estimate.js';
import { presetCfg } from '../../src/model/presets.js';
import { randomParams } from '../../src/model/weights.js';
import { parsePeers } from '../../src/peers/peer-list.js';
import { type MessageValidator, PeerNode } from '../../src/peers/peer-node.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan } from '../../src/tiles/plan.js';
import { newOptimizerState } from '../../src/train/optimizer.js';
import { setUpCluster } from '../../tools/lib/emulated-cluster.js';
import { bundleEnv, freePorts } from '../helpers/cluster.js';
import { paramsRelativeError, referenceTraining } from '../helpers/reference-training.js';

const STEPS = 3;
const SEED = 9;
const GOODPUT_FLOATS = 1 << 20; // 4 MiB per device in the timed all-reduce

if (process.env.EDGE_PEERS) await board(process.env.EDGE_PEERS, Number(process.env.EDGE_RANK ?? 'NaN'));
else await orchestrate(3);

async function board(peerList: string, rank: number): Promise<void> {
  const peers = parsePeers(peerList);
  if (!Number.isInteger(rank) || rank < 0 || rank >= peers.length) throw new Error(`EDGE_RANK must be 0..${peers.length - 1}, got "${process.env.EDGE_RANK}"`);
  const devices = peers.length;
  const base = presetCfg('tiny').network;
  const net = { ...base, hyper: { ...base.hyper, batch: 2, learningRate: 0.01 } };
  const rows = Math.max(1, Math.floor(Math.sqrt(devices)));
  const groups = parseGrouping('each', net.layers.length);
  const plan = buildTilePlan({ net, grid: { rows, cols: Math.ceil(devices / rows) }, devices, batch: 2, forwardGroups: groups, backwardGroups: groups });
  const runtimeBytes = process.memoryUsage().rss;
  const estimate = estimateDeviceMemory(plan, rank, { runtimeBytes, workers: 0 });
  const planned = planValidator(plan);
  // Timed reductions of the suite's own buckets are allowed besides the plan's.
  const validator: MessageValidator = {
    strip: planned.strip,
    reduce: (r, floats, sender) =>
      r.bucket.startsWith('board/') ? (floats > 0 && r.offset + floats <= GOODPUT_FLOATS ? null : `board bucket chunk [${r.offset}, +${floats}) too large`) : planned.reduce(r, floats, sender),
  };
  let node: PeerNode | null = null;

  t.test(`preflight of rank ${rank}`, async (t) => {
    const major = Number(process.versions.node.split('.')[0]);
    t.ok(major >= 20 && major < 22, `Node ${process.versions.node} (uWebSockets.js has native builds for 20; 22+ falls back to JS)`);
    const backend = await initBackend();
    t.not(backend.name, 'cpu', `tfjs backend in use: ${backend.name}${backend.notes.length ? ` (${backend.notes.join('; ')})` : ''}`);
    node = await PeerNode.start({ rank, peers, secret: process.env.EDGE_SECRET ?? 'edgefuse-board-suite', planHash: planHash(plan), validator, tileDevice: plan.tileDevice, peerTimeoutMs: 5000, connectTimeoutMs: 60_000 });
    const natives = (process.report.getReport() as { sharedObjects: string[] }).sharedObjects.filter((s) => /uws_.*\.node$/.test(s));
    t.ok(natives.length === 1, `uWebSockets.js runs its native build: ${natives[0] ?? 'none loaded'}`);
    t.ok(freemem() > estimate.totalBytes, `free memory ${(freemem() / 2 ** 20).toFixed(0)} MiB covers the plan's predicted peak ${(estimate.totalBytes / 2 ** 20).toFixed(0)} MiB`);

    // Clocks: every board's time in 16-bit pieces (exact in float32), summed into its own slots.
    const pieces = 3;
    const now = Date.now();
    const slots = new Float32Array(devices * pieces);
    for (let k = 0; k < pieces; k++) slots[rank * pieces + k] = Math.floor(now / 2 ** (16 * (pieces - 1 - k))) % 2 ** 16;
    await node.allReduceSum('board/clock', slots);
    const times = Array.from({ length: devices }, (_, r) => Array.from({ length: pieces }, (_, k) => slots[r * pieces + k]!).reduce((a, p) => a * 2 ** 16 + p, 0));
    const skew = Math.max(...times) - Math.min(...times);
    t.ok(skew < 5000, `clocks agree within ${skew} ms (includes the time to reach the all-reduce)`);

    const rounds: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      await node.barrier(1000 + i);
      rounds.push(performance.now() - started);
    }
    rounds.sort((a, b) => a - b);
    const latency = rounds[5]!;
    t.ok(latency < 200, `barrier round trip (median of 10): ${latency.toFixed(2)} ms`);

    const data = new Float32Array(GOODPUT_FLOATS).fill(1);
    await node.barrier(2000);
    const started = performance.now();
    await node.allReduceSum('board/goodput', data);
    const seconds = (performance.now() - started) / 1000;
    t.ok(data.every((v) => v === devices), 'the timed all-reduce sums correctly');
    // A ring all-reduce sends and receives 2(N-1)/N of the data on every link.
    const mbit = ((2 * (devices - 1)) / devices) * GOODPUT_FLOATS * 4 * 8 / seconds / 1e6;
    const link = Number(process.env.EDGE_LINK_MBIT ?? 0);
    if (link > 0) t.ok(mbit > 0.4 * link, `all-reduce goodput ${mbit.toFixed(1)} Mbit/s per link against a ${link} Mbit/s link`);
    else t.pass(`all-reduce goodput ${mbit.toFixed(1)} Mbit/s per link (set EDGE_LINK_MBIT to check it against the link)`);
  });

  t.test(`rank ${rank}: distributed training equals this board alone`, async (t) => {
    if (!node) return t.fail('no cluster link (preflight failed)');
    const runtime = await createDeviceRuntime({ plan, rank, params: randomParams(net, SEED), threads: 0 });
    try {
      await train({ runtime, exchange: node, params: runtime.params, state: newOptimizerState(runtime.params), firstStep: 0, steps: STEPS, seed: SEED, checksumEvery: 1 });
    } finally {
      await runtime.engine.close();
    }
    const reference = await referenceTraining(net, randomParams(net, SEED), STEPS, SEED);
    const error = paramsRelativeError(runtime.params, reference);
    t.ok(error < 1e-4, `weights after ${STEPS} steps on ${devices} boards against this board's single-device training: ${error.toExponential(2)}`);
    // The trainer compared checksums after every step; compare the final weights once more here.
    const mine = weightsChecksum(runtime.params);
    const all = new Float32Array(devices * 3);
    for (let k = 0; k < 3; k++) all[rank * 3 + k] = parseInt(mine.slice(k * 4, k * 4 + 4), 16);
    await node.allReduceSum('board/checksum', all);
    t.ok(Array.from({ length: devices }, (_, r) => all.slice(r * 3, r * 3 + 3).join()).every((c) => c === all.slice(0, 3).join()), `every board holds the same weights (${mine})`);
    const peak = process.resourceUsage().maxRSS * 1024;
    t.ok(peak <= estimate.totalBytes, `peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB within the plan's ${(estimate.totalBytes / 2 ** 20).toFixed(0)} MiB (this process also runs tap)`);
    await node.barrier(3000);
    node.close();
  });

  t.test(`rank ${rank}: a killed peer is reported by the others`, async (t) => {
    // Every board starts a device process on its peer port + 1; the last rank's is killed.
    const victim = devices - 1;
    const drillPeers = peers.map((p) => `${p.host}:${p.port + 1}`).join(',');
    const out = join(mkdtempSync(join(tmpdir(), 'edgefuse-drill-')), 'result.json');
    const child = spawn(process.execPath, ['dist/peer-step.js', '--mode', 'idle', '--model', 'tiny', '--grid', `${rows}x${Math.ceil(devices / rows)}`, '--rank', String(rank), '--peers', drillPeers, '--peer-timeout-ms', '3000', '--connect-timeout-ms', '60000', '--out', out],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...bundleEnv(), EDGE_SECRET: 'edgefuse-drill' } });
    let log = '';
    const ready = new Promise<void>((resolve) => child.stderr!.on('data', (d) => {
      log += d;
      if (log.includes('ready')) resolve();
    }));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await ready;
    if (rank === victim) {
      await new Promise((r) => setTimeout(r, 2000)); // every link is up by now
      child.kill('SIGKILL');
      t.equal(await exited, null, `rank ${rank} played the killed peer`);
      return;
    }
    const readyAt = Date.now();
    const code = await exited;
    const result = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : {};
    t.equal(code, 3, 'the device process stopped with a peer failure');
    t.match(String(result.error), new RegExp(`peer ${victim} \\(`), `it names the killed peer: ${result.error}`);
    t.ok(Date.now() - readyAt < 2000 + 10_000, `within 10 s of the kill (${Date.now() - readyAt - 2000} ms)`);
  });
}

async function orchestrate(devices: number): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  let emulation: ReturnType<typeof setUpCluster> | null = null;
  let why = '';
  try {
    if (process.getuid?.() !== 0) throw new Error('not root');
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    emulation = setUpCluster({ devices, rate: '100mbit', cpus: 2 / devices, memoryBytes: 1 << 30, runId: (process.pid % 46656).toString(36) });
  } catch (error) {
    why = (error as Error).message;
  }
  t.teardown(() => emulation?.tearDown());
  const peers = emulation ? emulation.peers : (await freePorts(devices)).map((p) => `127.0.0.1:${p}`).join(',');
  t.comment(emulation ? `emulated cluster of ${devices} boards: ${peers}` : `loopback cluster of ${devices} processes (no emulation: ${why})`);
  const runs = await Promise.all(Array.from({ length: devices }, (_, rank) => new Promise<{ code: number | null; output: string }>((resolve) => {
    const args = [...process.execArgv, self];
    const command = emulation ? emulation.wrap(rank, [process.execPath, ...args]) : { file: process.execPath, args };
    const child = spawn(command.file, command.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, EDGE_PEERS: peers, EDGE_RANK: String(rank), EDGE_SECRET: 'edgefuse-board-suite', ...(emulation ? { EDGE_LINK_MBIT: '100' } : {}) },
    });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  })));
  runs.forEach((run, rank) => {
    const failures = run.output.split('\n').filter((l) => /^\s*not ok /.test(l));
    t.equal(run.code, 0, `board ${rank} passes its suite (${run.output.split('\n').filter((l) => /^\s+ok /.test(l)).length} checks ok)`);
    if (run.code !== 0) t.comment(`board ${rank}:\n${failures.join('\n')}\n${run.output.slice(-3000)}`);
  });
}
