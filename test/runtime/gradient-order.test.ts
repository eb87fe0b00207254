// The partial gradients a tile receives are summed in a fixed order (its own part, then the other
// tiles' strips in tile order; each strip lands in a slot of its own, so arrival order cannot
// matter), so a tile's gradient does not depend on which device holds which tile: bit for bit.
import t from 'tap';
import { initBackend } from '../../src/fused/backend.js';
import { createDeviceRuntime } from '../../src/loop/device-runtime.js';
import { runDeviceStep } from '../../src/loop/device-step.js';
import { presetCfg } from '../../src/model/presets.js';
import { createInMemoryCluster } from '../../src/peers/in-memory.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan } from '../../src/tiles/plan.js';
import { verifyData } from '../../src/verify/verify-data.js';

await initBackend('wasm');
const net = presetCfg('tiny').network;

/** Every tile's input gradient (its core), keyed by tile, with the 2x3 tiles spread over `devices`. */
async function inputGradients(devices: number): Promise<Map<number, Float32Array>> {
  const groups = parseGrouping('0,1,3', net.layers.length);
  const plan = buildTilePlan({ net, grid: { rows: 2, cols: 3 }, devices, batch: 1, forwardGroups: groups, backwardGroups: groups });
  const { params, stepInputs } = verifyData(net, 1, 7);
  const cluster = createInMemoryCluster(plan.devices, plan.tileDevice);
  const runtimes = await Promise.all(cluster.map((e) => createDeviceRuntime({ plan, rank: e.rank, params, threads: 0, backend: 'wasm', wantInputGradient: true })));
  try {
    await Promise.all(runtimes.map((r) => r.engine.loadParams()));
    const results = await Promise.all(cluster.map((e, rank) => runDeviceStep(runtimes[rank]!, e, stepInputs, { step: 0, wantInputGradient: true })));
    return new Map(results.flatMap((r) => [...r.inputGradient]));
  } finally {
    await Promise.all(runtimes.map((r) => r.engine.close()));
  }
}

const bits = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];

t.test('gradient halos sum to the same bits with the tiles on 1, 2, 3 or 6 devices', async (t) => {
  const alone = await inputGradients(1);
  t.equal(alone.size, 6);
  t.ok([...alone.values()].every((core) => core.some((v) => v !== 0)), 'every tile has a gradient');
  for (const devices of [2, 3, 6]) {
    const spread = await inputGradients(devices);
    for (const [tile, core] of alone) t.same(bits(spread.get(tile)!), bits(core), `${devices} devices: tile ${tile}`);
  }
});
