// The tile-partitioned front equals tf.grad of the unpartitioned front on the wasm backend, for many
// random networks, grids, groupings, batches and device counts, and for the YOLOv2 front.
import t from 'tap';
import { initBackend } from '../../src/fused/backend.js';
import { presetCfg, withInputSize } from '../../src/model/presets.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan, recomputesStash } from '../../src/tiles/plan.js';
import { verify } from '../../src/verify/verify.js';
import { randomConfig } from '../helpers/random-net.js';

const TOLERANCE = 1e-4;
const backend = await initBackend('wasm');
t.equal(backend.name, 'wasm');

t.test('random configurations', async (t) => {
  const seen = { kernels: new Set<number>(), strides: new Set<number>(), pools: new Set<string>(), oddMaps: 0, evenMaps: 0, nonSquare: 0, splitBackward: 0, recomputedStashes: 0, keptStashes: 0 };
  for (let seed = 1; seed <= 220; seed++) {
    const config = randomConfig(seed);
    const report = await verify({ ...config, seed, tolerance: TOLERANCE });
    t.ok(report.ok, `#${seed} ${config.describe}: ${report.maxRelError.toExponential(2)} (${report.worst})`);
    for (const l of config.net.layers) {
      if (l.kind === 'conv') { seen.kernels.add(l.size); seen.strides.add(l.stride); }
      else seen.pools.add(`${l.size}/${l.stride}`);
    }
    if (config.net.input.height % 2) seen.oddMaps++; else seen.evenMaps++;
    if (config.grid.rows !== config.grid.cols) seen.nonSquare++;
    if (config.forwardGroups !== config.backwardGroups) seen.splitBackward++;
    // Conv stashes of reusing windows: recomputed in backward, or kept from forward.
    const plan = buildTilePlan(config);
    const reused = plan.backward.flatMap((w) => (w.reuseForward === null ? [] : config.net.layers.flatMap((l, i) => (l.kind === 'conv' && i >= w.group.first && i <= w.group.last ? [i] : []))));
    if (reused.some((l) => recomputesStash(plan, l))) seen.recomputedStashes++;
    if (reused.some((l) => !recomputesStash(plan, l))) seen.keptStashes++;
  }
  // The generator must actually cover what the suite claims to cover.
  t.same([...seen.kernels].sort(), [1, 2, 3, 5]);
  t.same([...seen.strides].sort(), [1, 2]);
  t.same([...seen.pools].sort(), ['2/2', '3/1', '3/2']);
  t.ok(seen.oddMaps > 20 && seen.evenMaps > 20 && seen.nonSquare > 20 && seen.splitBackward > 20 && seen.recomputedStashes > 20 && seen.keptStashes > 20, JSON.stringify({ ...seen, kernels: 0, strides: 0, pools: 0 }));
});

t.test('YOLOv2 front at 160x160', async (t) => {
  const net = withInputSize(presetCfg('yolov2-front').network, 160, 160);
  for (const grid of [{ rows: 2, cols: 2 }, { rows: 3, cols: 3 }]) {
    for (const grouping of ['each', 'all', '0,8,10,12,14']) {
      const groups = parseGrouping(grouping, net.layers.length);
      const report = await verify({ net, grid, forwardGroups: groups, backwardGroups: groups, batch: 1, seed: 3, tolerance: TOLERANCE });
      t.ok(report.ok, `grid ${report.grid} ${grouping}: ${report.maxRelError.toExponential(2)} (${report.worst})`);
      t.ok(report.devicesAgree, 'every device holds the same summed gradients');
    }
  }
  // The reference's own profile: forward starts 1,2,4,8 with backward groups ending at 1,5,7,9.
  const forward = parseGrouping('1,2,4,8', net.layers.length);
  const backward = parseGrouping('2,6,8,10', net.layers.length);
  const report = await verify({ net, grid: { rows: 2, cols: 2 }, forwardGroups: forward, backwardGroups: backward, batch: 1, seed: 4, tolerance: TOLERANCE });
  t.ok(report.ok, `forward 1,2,4,8 backward 2,6,8,10: ${report.maxRelError.toExponential(2)} (${report.worst})`);
});
