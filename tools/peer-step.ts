// One device of a real multi-process cluster over uWebSockets.js, for the transport tests and
// benchmark: `step` trains one verify-style step of the tiled front, `allreduce` sums seeded
// arrays, `idle` connects and waits (to observe failures). Results go to --out as JSON.
//   node dist/peer-step.js --mode step --rank 0 --peers 127.0.0.1:9000,127.0.0.1:9001 --out r0.json
import { writeFileSync } from 'node:fs';
import { initBackend } from '../src/fused/backend.js';
import { createDeviceRuntime } from '../src/loop/device-runtime.js';
import { runDeviceStep } from '../src/loop/device-step.js';
import { planHash, planValidator } from '../src/loop/plan-messages.js';
import { loadModel } from '../src/model/load.js';
import { withInputSize } from '../src/model/presets.js';
import { fillUniform, seededRandom } from '../src/model/weights.js';
import { PeerNode } from '../src/peers/peer-node.js';
import { parseGrid } from '../src/tiles/grid.js';
import { parseGrouping } from '../src/tiles/groups.js';
import { buildTilePlan } from '../src/tiles/plan.js';
import { verifyData } from '../src/verify/verify-data.js';
import { parsePeers } from '../src/peers/peer-list.js';
import { toolArgs } from './lib/tool-args.js';

const values = toolArgs('peer-step', 'One device of a real multi-process cluster for the transport tests and benchmark (--mode step | allreduce | idle).', {
    mode: { type: 'string', default: 'step' },
    rank: { type: 'string' },
    peers: { type: 'string' },
    secret: { type: 'string', default: process.env.EDGE_SECRET ?? 'edgefuse-test' },
    model: { type: 'string', default: 'tiny' },
    input: { type: 'string' },
    grid: { type: 'string', default: '2x2' },
    'forward-groups': { type: 'string', default: 'each' },
    'backward-groups': { type: 'string' },
    batch: { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    floats: { type: 'string', default: '100000' },
    repeats: { type: 'string', default: '1' },
    workers: { type: 'string', default: '1' },
    'chunk-floats': { type: 'string' },
    'peer-timeout-ms': { type: 'string', default: '3000' },
    'connect-timeout-ms': { type: 'string', default: '20000' },
    out: { type: 'string' },
  });

const rank = Number(values.rank);
const peers = parsePeers(values.peers ?? '');
let net = loadModel(values.model!).network;
if (values.input) net = withInputSize(net, Number(values.input.split('x')[0]), Number(values.input.split('x')[1] ?? values.input.split('x')[0]));
const forwardGroups = parseGrouping(values['forward-groups']!, net.layers.length);
const backwardGroups = parseGrouping(values['backward-groups'] ?? values['forward-groups']!, net.layers.length);
const batch = Number(values.batch);
const plan = buildTilePlan({ net, grid: parseGrid(values.grid!), devices: peers.length, batch, forwardGroups, backwardGroups });
const log = (line: string) => process.stderr.write(`${line}\n`);
const toBase64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const write = (result: object) => values.out && writeFileSync(values.out, JSON.stringify(result));

const totalFloats = Number(values.floats);
// The all-reduce mode sums arrays of its own size, so it accepts its own buckets instead of the plan's.
const validator = values.mode === 'allreduce'
  ? {
      strip: () => 'no strips in all-reduce mode',
      reduce: (r: { bucket: string; offset: number }, floats: number) =>
        r.bucket.startsWith('bench/') && r.offset + floats <= totalFloats ? null : `bucket ${r.bucket} [${r.offset}, +${floats}) outside ${totalFloats} floats`,
    }
  : planValidator(plan);

let node: PeerNode;
try {
  node = await PeerNode.start({
    rank, peers, secret: values.secret!, planHash: planHash(plan), validator, tileDevice: plan.tileDevice,
    peerTimeoutMs: Number(values['peer-timeout-ms']), connectTimeoutMs: Number(values['connect-timeout-ms']), log,
    ...(values['chunk-floats'] ? { maxChunkFloats: Number(values['chunk-floats']) } : {}),
  });
} catch (error) {
  log(`start failed: ${(error as Error).message}`);
  write({ rank, error: (error as Error).message });
  process.exit(2);
}
node.onFailure((error) => {
  log(`failure: ${error.message}`);
  write({ rank, error: error.message, at: Date.now() });
  // Stay up for one more peer timeout: exiting at once closes this device's links, and a slower
  // peer would then report this device instead of noticing the failed one itself.
  setTimeout(() => process.exit(3), Number(values['peer-timeout-ms']));
});

if (values.mode === 'idle') {
  log('ready');
  await new Promise(() => undefined); // until killed or a peer fails
}

if (values.mode === 'allreduce') {
  const random = seededRandom(Number(values.seed) * 1000 + rank);
  const data = fillUniform(new Float32Array(totalFloats), random, -1, 1);
  const contribution = data.slice();
  const seconds: number[] = [];
  for (let r = 0; r < Number(values.repeats); r++) {
    data.set(contribution);
    await node.barrier(r);
    const started = performance.now();
    await node.allReduceSum(`bench/${r}`, data);
    seconds.push((performance.now() - started) / 1000);
  }
  write({ rank, sum: toBase64(data), seconds, counters: { ...node.counters, perPeer: Object.fromEntries(node.counters.perPeer), rejected: Object.fromEntries(node.counters.rejected) } });
} else {
  const backend = await initBackend('wasm');
  const data = verifyData(net, batch, Number(values.seed));
  const runtime = await createDeviceRuntime({ plan, rank, params: data.params, threads: Number(values.workers), backend: backend.name, wantInputGradient: true });
  await runtime.engine.loadParams();
  await node.barrier(0);
  const started = performance.now();
  const result = await runDeviceStep(runtime, node, data.stepInputs, { step: 0, wantInputGradient: true });
  const seconds = (performance.now() - started) / 1000;
  await runtime.engine.close();
  write({
    rank, backend: backend.name, seconds,
    weightGradients: result.weightGradients.map((g) => g && { dFilter: toBase64(g.dFilter), dBiases: toBase64(g.dBiases), ...(g.dScales ? { dScales: toBase64(g.dScales) } : {}) }),
    inputGradient: Object.fromEntries([...result.inputGradient].map(([tile, core]) => [tile, toBase64(core)])),
    copies: node.counters.copiesPerPayloadByte(),
  });
}
await node.barrier(1_000_000);
node.close();
process.exit(0);
