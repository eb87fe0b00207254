// The arena plan against hand-computed cases: on a device with one tile buffers live layer by layer
// (a stash is free once its layer's backward ran, the gradient at a map once the layer below read
// it); with several tiles per device a group or window is one slot.
import t from 'tap';
import { ALIGN_FLOATS, planDeviceArenas, stepTimeline } from '../../src/memory/arena-plan.js';
import { CONSTANT_SCHEDULE, type Network, convLayer, maxpoolLayer } from '../../src/model/layers.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan } from '../../src/tiles/plan.js';

// 8x8x1 -> conv 4 (3x3) -> 8x8x4 -> maxpool 2/2 -> 4x4x4 -> conv 2 (3x3) -> 4x4x2
const net: Network = {
  name: 'hand',
  input: { height: 8, width: 8, channels: 1 },
  layers: [convLayer(4, 3, 1, { batchNormalize: false }), maxpoolLayer(2, 2), convLayer(2, 3, 1, { batchNormalize: false })],
  hyper: { batch: 1, learningRate: 0.01, momentum: 0.9, decay: 0.0005, schedule: CONSTANT_SCHEDULE },
};
const aligned = (floats: number): number => Math.ceil(floats / ALIGN_FLOATS) * ALIGN_FLOATS;
const plan = (grid: { rows: number; cols: number }, devices: number) => {
  const groups = parseGrouping('all', net.layers.length);
  return buildTilePlan({ net, grid, devices, batch: 1, forwardGroups: groups, backwardGroups: groups });
};

t.test('one tile: slots per layer', async (t) => {
  const p = plan({ rows: 1, cols: 1 }, 1);
  const time = stepTimeline(p, true);
  t.same([0, 1, 2].map((l) => time.forward(0, l)), [0, 1, 2], 'forward layer by layer');
  t.equal(time.loss, 3);
  t.same([2, 1, 0].map((l) => time.backward(0, l)), [4, 5, 6], 'backward from the last layer down');
  t.equal(time.reduce, 7);

  const [arena] = planDeviceArenas(p, 0, { wantInputGradient: false });
  // Floats: input 64, stashes 256 / 64 / 32, output core 32, its gradient 32, the gradients at
  // maps 2 (64) and 1 (256), weight buckets 3*3*1*4+4 = 40 and 3*3*4*2+2 = 74.
  // The peak is layer 1's backward (slot 5): input, stash 0, stash 1, the gradients at maps 2 and 1,
  // and layer 2's bucket; stash 2 and the output gradient are free by then.
  const peak = [64, 256, 64, 64, 256, 74].map(aligned).reduce((a, b) => a + b, 0);
  t.equal(arena!.peakLiveFloats, peak, `peak ${peak} floats`);
  const gradient1 = arena!.buffers.find((b) => b.key === 'backward 0/tile 0/gradient 1')!;
  const stash2 = arena!.buffers.find((b) => b.key === 'forward 0/tile 0/stash 2')!;
  t.same([gradient1.first, gradient1.last], [5, 6], 'the gradient at map 1: written by layer 1, read by layer 0');
  t.same([stash2.first, stash2.last], [2, 4], 'stash 2: from its forward to its backward');
  // Float64 filter-gradient sums (two floats each) live only during their layer's backward.
  const sums = arena!.buffers.filter((b) => b.key.includes('filter sums')).map((b) => [b.key, b.floats, b.first, b.last]);
  t.same(sums.sort(), [['backward 0/tile 0/filter sums 0', 2 * 36, 6, 6], ['backward 0/tile 0/filter sums 2', 2 * 72, 4, 4]]);
});

t.test('several tiles on a device: a window is one slot', async (t) => {
  const p = plan({ rows: 2, cols: 1 }, 1);
  const time = stepTimeline(p, false);
  t.same([0, 1, 2].map((l) => time.forward(0, l)), [0, 0, 0]);
  t.same([0, 1, 2].map((l) => time.backward(0, l)), [2, 2, 2]);
  const [arena] = planDeviceArenas(p, 0, { wantInputGradient: false });
  // Both tiles' window buffers overlap in time: every tile's stashes and gradients are live at once.
  const window = arena!.buffers.filter((b) => b.first <= 2 && 2 <= b.last);
  t.equal(arena!.peakLiveFloats, window.reduce((sum, b) => sum + aligned(b.floats), 0), 'the peak is the whole window');
  t.ok(window.some((b) => b.key.includes('tile 0/stash 0')) && window.some((b) => b.key.includes('tile 1/gradient 1')), 'tiles 0 and 1 together');
  // Per-map gradient buffers would all be live in that one slot: two alternate by the map's parity.
  const gradients = arena!.buffers.filter((b) => b.key.startsWith('backward 0/tile 0/gradient')).map((b) => `${b.key.split(' ').pop()}: ${b.floats}`).sort();
  const map = (m: number) => p.batch * p.maps[m]!.channels * (p.forward[0]![0]!.held[m]!.rows.end - p.forward[0]![0]!.held[m]!.rows.start) * (p.forward[0]![0]!.held[m]!.cols.end - p.forward[0]![0]!.held[m]!.cols.start);
  t.same(gradients, [`0: ${map(2)}`, `1: ${map(1)}`], 'tile 0: the gradients at maps 2 and 1 in buffers 0 and 1');
  // One filter-sums buffer per tile, as large as the window's largest filter, reused layer after layer.
  t.same(arena!.buffers.filter((b) => b.key.includes('filter sums')).map((b) => [b.key, b.floats]).sort(),
    [['backward 0/tile 0/filter sums', 2 * 72], ['backward 0/tile 1/filter sums', 2 * 72]]);
});
