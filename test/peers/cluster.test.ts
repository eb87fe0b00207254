// Real device processes on loopback: a training step over the network equals tf.grad of the
// unpartitioned front; the all-reduce equals the one-process sum and is bit-identical everywhere;
// wrong secrets, different plans and killed peers are reported clearly.
import t from 'tap';
import { initBackend } from '../../src/fused/backend.js';
import { linearLoss, referenceGradients } from '../../src/fused/reference.js';
import { presetCfg } from '../../src/model/presets.js';
import { fillUniform, seededRandom } from '../../src/model/weights.js';
import { copySubRegion } from '../../src/tiles/layout.js';
import { buildTilePlan, planCore } from '../../src/tiles/plan.js';
import { parseGrid } from '../../src/tiles/grid.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { relativeError } from '../../src/verify/verify.js';
import { verifyData } from '../../src/verify/verify-data.js';
import { allReady, fromBase64, startCluster } from '../helpers/cluster.js';

await initBackend('wasm');
const net = presetCfg('tiny').network;

const cases = [
  { devices: 2, grid: '2x2', forward: 'each', backward: 'each', batch: 1 },
  { devices: 3, grid: '3x2', forward: '0,2', backward: '0,3', batch: 2 },
  { devices: 4, grid: '2x2', forward: 'all', backward: 'all', batch: 1 },
  { devices: 6, grid: '2x3', forward: '0,1,3', backward: 'all', batch: 1 },
];

for (const c of cases) {
  t.test(`one step on ${c.devices} processes, grid ${c.grid}, forward ${c.forward}, backward ${c.backward}`, async (t) => {
    const { runs } = await startCluster(c.devices, () => [
      '--mode', 'step', '--grid', c.grid, '--forward-groups', c.forward, '--backward-groups', c.backward, '--batch', String(c.batch), '--seed', '7',
      // Small chunks so strips really travel as several row bands.
      '--chunk-floats', '512',
    ]);
    const codes = await Promise.all(runs.map((r) => r.exit));
    t.same(codes, runs.map(() => 0), runs.map((r) => r.stderr()).join('\n'));
    const results = runs.map((r) => r.result()!);
    const data = verifyData(net, c.batch, 7);
    const reference = await referenceGradients(net, data.params, data.input, linearLoss(data.outputWeights), c.batch);
    const groups = parseGrouping(c.forward, net.layers.length);
    const plan = buildTilePlan({ net, grid: parseGrid(c.grid), devices: c.devices, batch: c.batch, forwardGroups: groups, backwardGroups: parseGrouping(c.backward, net.layers.length) });
    reference.weightGradients.forEach((ref, l) => {
      if (!ref) return;
      const mine = (results[0]!.weightGradients as Record<string, string>[])[l]!;
      t.ok(relativeError(fromBase64(mine.dFilter!), ref.dFilter) < 1e-4, `layer ${l} filter`);
      t.ok(relativeError(fromBase64(mine.dBiases!), ref.dBiases) < 1e-4, `layer ${l} biases`);
      for (const other of results.slice(1)) t.same((other.weightGradients as Record<string, string>[])[l], mine, `layer ${l}: rank ${other.rank} holds the same bits as rank 0`);
    });
    const inputGradient = new Float32Array(data.input.length);
    for (const result of results) {
      for (const [tile, core] of Object.entries(result.inputGradient as Record<string, string>)) {
        const region = planCore(plan, 0, Number(tile));
        copySubRegion(fromBase64(core), { ...data.inputLayout, region }, inputGradient, data.inputLayout, region);
      }
    }
    t.ok(relativeError(inputGradient, reference.inputGradient) < 1e-4, 'input gradient assembled from every device');
    // One gather and one scatter per payload byte; payloads that arrive before their consumer (a
    // timing matter) cost one stash copy more, reported apart and bounded here loosely.
    const copies = results[0]!.copies as { sending: number; receiving: number; receivingEarly: number };
    t.ok(copies.sending === 1 && copies.receiving === 1, `user-space copies per payload byte: ${JSON.stringify(copies)}`);
    t.ok(copies.receivingEarly < 0.5, `early arrivals stay the exception: ${copies.receivingEarly}`);
  });
}

t.test('all-reduce over 2 to 6 processes equals the one-process sum, bit-identical everywhere', async (t) => {
  for (const devices of [2, 3, 5, 6]) {
    const floats = 10007;
    const { runs } = await startCluster(devices, () => ['--mode', 'allreduce', '--grid', '3x2', '--floats', String(floats), '--seed', '3', '--chunk-floats', '999']);
    const codes = await Promise.all(runs.map((r) => r.exit));
    t.same(codes, runs.map(() => 0), runs.map((r) => r.stderr()).join('\n'));
    const sums = runs.map((r) => r.result()!.sum as string);
    t.ok(sums.every((s) => s === sums[0]), `${devices} devices: identical bits`);
    const expected = new Float64Array(floats);
    for (let rank = 0; rank < devices; rank++) {
      const part = fillUniform(new Float32Array(floats), seededRandom(3 * 1000 + rank), -1, 1);
      for (let i = 0; i < floats; i++) expected[i]! += part[i]!;
    }
    const got = fromBase64(sums[0]!);
    t.ok(relativeError(got, Float32Array.from(expected)) < 1e-6, `${devices} devices: equals the sum`);
  }
});

t.test('a wrong secret is refused with a clear message', async (t) => {
  const { runs } = await startCluster(2, (rank) => ['--mode', 'idle', '--connect-timeout-ms', '4000', '--secret', rank === 1 ? 'not-the-secret' : 'the-secret']);
  const codes = await Promise.all(runs.map((r) => r.exit));
  t.same(codes, [2, 2]);
  const all = runs.map((r) => r.stderr()).join('\n');
  t.match(all, /wrong cluster secret|does not know the cluster secret|authentication failed/);
  t.notMatch(all, /the-secret|not-the-secret/, 'the secret never appears in messages');
});

t.test('a different plan is refused naming both hashes', async (t) => {
  const { runs } = await startCluster(2, (rank) => ['--mode', 'idle', '--connect-timeout-ms', '4000', '--batch', rank === 0 ? '1' : '2']);
  const codes = await Promise.all(runs.map((r) => r.exit));
  t.same(codes, [2, 2]);
  t.match(runs.map((r) => r.stderr()).join('\n'), /has plan hash [0-9a-f]{16}, ours is [0-9a-f]{16}/);
});

t.test('a killed peer is reported by every other device within the timeout', async (t) => {
  const { runs } = await startCluster(4, () => ['--mode', 'idle', '--peer-timeout-ms', '2000']);
  await allReady(runs);
  const killedAt = Date.now();
  runs[2]!.child.kill('SIGKILL');
  const codes = await Promise.all([0, 1, 3].map((i) => runs[i]!.exit));
  t.same(codes, [3, 3, 3], 'every survivor stops with a peer failure');
  for (const i of [0, 1, 3]) {
    const result = runs[i]!.result()!;
    t.match(result.error as string, /peer 2 \(127\.0\.0\.1:\d+\)/, `rank ${i} names the dead peer`);
    t.ok((result.at as number) - killedAt < 2000 + 1000, `rank ${i} noticed within the timeout (${(result.at as number) - killedAt} ms)`);
  }
});

t.test('a silent (stopped) peer is reported within the timeout', async (t) => {
  const { runs } = await startCluster(3, () => ['--mode', 'idle', '--peer-timeout-ms', '1500']);
  await allReady(runs);
  const stoppedAt = Date.now();
  runs[1]!.child.kill('SIGSTOP');
  const codes = await Promise.all([0, 2].map((i) => runs[i]!.exit));
  runs[1]!.child.kill('SIGKILL');
  t.same(codes, [3, 3]);
  for (const i of [0, 2]) {
    const result = runs[i]!.result()!;
    t.match(result.error as string, /peer 1 .* silent for \d+ ms/, `rank ${i} names the silent peer`);
    t.ok((result.at as number) - stoppedAt < 1500 + 1500, `rank ${i} noticed in ${(result.at as number) - stoppedAt} ms`);
  }
});
