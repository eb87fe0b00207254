// The cost model against hand-computed cases on a two-layer net, and properties on real fronts.
import t from 'tap';
import { builtinProfile } from '../../src/grouping/builtin-profiles.js';
import { scheduleTasks } from '../../src/grouping/compute-cost.js';
import { planExchanges, predictMemory, predictPlan, predictStep, unpartitionedFlops } from '../../src/grouping/cost.js';
import type { DeviceProfile } from '../../src/grouping/profile.js';
import { exchangeWaitSeconds, ringAllReduceCost, stripMessages } from '../../src/grouping/traffic.js';
import { estimateDeviceMemory } from '../../src/memory/estimate.js';
import { type ArenaLayout, planDeviceArenas } from '../../src/memory/arena-plan.js';
import { CONSTANT_SCHEDULE, type Network, convLayer } from '../../src/model/layers.js';
import { presetCfg, withInputSize } from '../../src/model/presets.js';
import { seededRandom } from '../../src/model/weights.js';
import { rowBands } from '../../src/peers/row-bands.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan } from '../../src/tiles/plan.js';
import { between, randomGrouping } from '../helpers/random-net.js';

const MIB = 1024 * 1024;

/** 1 GFLOP/s for every op, elementwise work and overheads negligible, one worker, 1 MiB/s links. */
const UNIT: DeviceProfile = {
  name: 'unit',
  description: 'round numbers for hand-computed tests',
  compute: {
    conv: [{ forwardGflops: 1, inputGradientGflops: 1, filterGradientGflops: 1 }],
    maxpoolForwardGflops: 1, maxpoolBackwardGflops: 1, elementwiseGflops: 1e12,
    layerOverheadMs: 0, taskOverheadMs: 0, workers: 1, parallelEfficiency: 1,
  },
  link: { mibPerSecond: 1, latencyMs: 0, maxMessageFloats: 1 << 20, cpuMsPerMiB: 0 },
  memory: { runtimeMiB: 50 },
};

/** 8x8x1 -> conv 3x3 to 2 channels -> conv 3x3 to 3 channels (pad 1, no BN): every number below by hand. */
const TWO_CONVS: Network = {
  name: 'two-convs',
  input: { height: 8, width: 8, channels: 1 },
  layers: [convLayer(2, 3), convLayer(3, 3)],
  hyper: { batch: 1, learningRate: 0.01, momentum: 0.9, decay: 0, schedule: CONSTANT_SCHEDULE },
};

const planFor = (net: Network, grid: string, devices: number, forward: string, backward = forward, batch = 1, recomputeStashFlops?: number) => {
  const [rows, cols] = grid.split('x').map(Number) as [number, number];
  return buildTilePlan({
    net, grid: { rows, cols }, devices, batch, forwardGroups: parseGrouping(forward, net.layers.length), backwardGroups: parseGrouping(backward, net.layers.length),
    ...(recomputeStashFlops === undefined ? {} : { recomputeStashFlops }),
  });
};
/** The hand-computed cases keep every stash (their tiny convs would all be cheap to recompute). */
const keptPlan = (net: Network, grid: string, devices: number, forward: string) => planFor(net, grid, devices, forward, forward, 1, 0);

t.test('one group over two devices: redundant compute, no strips, the reduce at the end', async (t) => {
  // Grid 1x2: tile 0 owns columns [0,4) of every map. Layer 1 needs map 1 columns [0,5): 8x5 positions.
  // Forward FLOPs per tile: layer 0 2*40*2*9*1 = 1440, layer 1 2*32*3*9*2 = 3456 -> 4896.
  // Backward: layer 1 input and filter gradients 2*3456 = 6912, layer 0 filter gradient only 1440.
  const p = predictStep(keptPlan(TWO_CONVS, '1x2', 2, 'all'), UNIT);
  const computeSeconds = (4896 + 6912 + 1440) / 1e9;
  // Weights: 3*3*1*2 + 2 = 20 and 3*3*2*3 + 3 = 57 floats; a ring of 2 moves half of them twice.
  const reduceBytes = (2 * 77 * 4) / 2;
  t.equal(p.reduceBytesPerDevice, reduceBytes);
  t.ok(Math.abs(p.stepSeconds - (computeSeconds + reduceBytes / MIB)) < 1e-12, `step ${p.stepSeconds}`);
  t.ok(Math.abs(p.computeSeconds - computeSeconds) < 1e-12);
  t.ok(Math.abs(p.reduceSeconds - reduceBytes / MIB) < 1e-12);
  t.ok(Math.abs(p.exchangeSeconds) < 1e-12);
  t.same(p.exchanges, []);
  // Unpartitioned: forward 2*64*2*9 + 2*64*3*18 = 9216, backward 2*6912 + 2304 = 16128.
  t.ok(Math.abs(p.redundancy - (2 * 13248) / 25344) < 1e-12, `redundancy ${p.redundancy}`);
  t.same(p.devices.map((d) => d.flops), [13248, 13248]);
});

t.test('cheap stashes are recomputed in backward: their forward FLOPs again, their stash not kept', async (t) => {
  // TWO_CONVS as in the first case with the default threshold: layer 0 costs 2*9*1 = 18 FLOPs per
  // stashed value, layer 1 2*9*2 = 36, both at most 64: backward recomputes both (4896 per tile).
  const plan = planFor(TWO_CONVS, '1x2', 2, 'all');
  t.equal(plan.recomputeStashFlops, 64);
  const p = predictStep(plan, UNIT);
  const computeSeconds = (4896 + 4896 + 6912 + 1440) / 1e9;
  t.ok(Math.abs(p.computeSeconds - computeSeconds) < 1e-12, `compute ${p.computeSeconds}`);
  t.same(p.devices.map((d) => d.flops), [18144, 18144]);
  t.ok(Math.abs(p.redundancy - (2 * 18144) / 25344) < 1e-12, 'the recompute counts as redundant work');
  // A tile's stashes: map 1 over 8x5 x 2 channels (80 floats), map 2 over 8x4 x 3 (96): kept from
  // forward to backward unless recomputed; recomputed, each lives only in forward and backward.
  const [kept] = planDeviceArenas(keptPlan(TWO_CONVS, '1x2', 2, 'all'), 0, { wantInputGradient: false });
  const [recomputed] = planDeviceArenas(plan, 0, { wantInputGradient: false });
  const live = (a: ArenaLayout, key: string) => a.buffers.find((b) => b.key === key);
  t.same([live(kept!, 'forward 0/tile 0/stash 0')?.last, live(kept!, 'forward 0/tile 0/stash 1')?.last], [4, 3], 'kept: stash 0 until layer 0 backward, stash 1 until layer 1 backward');
  t.equal(live(recomputed!, 'forward 0/tile 0/stash 0')?.last, 1, 'recomputed: stash 0 only until layer 1 forward read it');
  t.equal(live(recomputed!, 'forward 0/tile 0/stash 1'), undefined, 'the last layer writes no stash in forward');
  t.same([live(recomputed!, 'backward 0/tile 0/stash 0'), live(recomputed!, 'backward 0/tile 0/stash 1')].map((b) => b && [b.first, b.last]), [[3, 4], [3, 3]],
    'both recomputed at layer 1 backward (slot 3); stash 0 read until layer 0 backward (slot 4)');
});

t.test('data-parallel replicas: each computes the whole step, the ring spans the replicas', async (t) => {
  // Two replicas of a 1x1 plan, one image each: the unpartitioned FLOPs (25344) per device, then a
  // ring of 2 over the 77 weight floats.
  const plan = buildTilePlan({ net: TWO_CONVS, grid: { rows: 1, cols: 1 }, devices: 1, replicas: 2, batch: 1, forwardGroups: parseGrouping('all', 2), backwardGroups: parseGrouping('all', 2), recomputeStashFlops: 0 });
  const p = predictStep(plan, UNIT);
  const reduceBytes = (2 * 77 * 4) / 2;
  t.equal(p.reduceBytesPerDevice, reduceBytes);
  t.ok(Math.abs(p.stepSeconds - (25344 / 1e9 + reduceBytes / MIB)) < 1e-12, `step ${p.stepSeconds}`);
  t.equal(predictStep(keptPlan(TWO_CONVS, '1x1', 1, 'all'), UNIT).reduceBytesPerDevice, 0, 'one device alone reduces nothing');
});

t.test('a ring issued while another runs pays its latency only where the earlier ring\'s bytes do not cover it', async (t) => {
  // Two replicas (no strips), a group and a window per layer: layer 1's ring (57 floats: 228 B each
  // way, 2 rounds) starts when window 1 ends at 23040 FLOPs; window 0 (2304) ends while it runs, and
  // layer 0's ring (80 B, 2 rounds) follows it on the link.
  const plan = buildTilePlan({ net: TWO_CONVS, grid: { rows: 1, cols: 1 }, devices: 1, replicas: 2, batch: 1, forwardGroups: parseGrouping('each', 2), backwardGroups: parseGrouping('each', 2), recomputeStashFlops: 0 });
  const windowOne = 23040e-9;
  const windowZero = windowOne + 2304e-9;
  // 1 ms of latency: layer 1's ring ends 228 B + 2 ms after window 1; layer 0's latency passes under
  // it, so it adds only its 80 B (charged whole, it would add 80 B + 2 ms).
  const slowRounds = { ...UNIT, link: { ...UNIT.link, latencyMs: 1 } };
  const first = predictStep(plan, slowRounds).stepSeconds;
  t.ok(Math.abs(first - (windowOne + 228 / MIB + 0.002 + 80 / MIB)) < 1e-12, `step ${first}`);
  // A fast link (1000 MiB/s) and 1.5 us of latency: layer 1's ring is 0.9 us from its end when
  // window 0 ends, less than layer 0's two rounds: that ring then takes its whole time from there.
  const fastLink = { ...UNIT, link: { ...UNIT.link, mibPerSecond: 1000, latencyMs: 0.0015 } };
  const second = predictStep(plan, fastLink).stepSeconds;
  t.ok(windowOne + 228 / (1000 * MIB) + 3e-6 > windowZero, 'layer 1\'s ring still runs when window 0 ends');
  t.ok(Math.abs(second - (windowZero + 80 / (1000 * MIB) + 3e-6)) < 1e-12, `step ${second}`);
});

t.test('a group per layer: halo and gradient strips, partial gradients leaving early, overlapped reduce', async (t) => {
  const plan = keptPlan(TWO_CONVS, '1x2', 2, 'each');
  const p = predictStep(plan, UNIT);
  // Only cores are computed: forward 1152 + 3456, backward 6912 + 1152 per tile.
  t.same(p.devices.map((d) => d.flops), [12672, 12672]);
  t.equal(p.redundancy, 1);
  // At the start of group 1 each tile needs one column of the other's map-1 core: 8 rows x 2 channels.
  const halo = planExchanges(plan, UNIT).find((e) => e.phase === 'halo' && e.group === 1)!;
  t.same(halo.traffic.sentBytes, [64, 64]);
  t.same(halo.traffic.receivedMessages, [1, 1]);
  const grad = planExchanges(plan, UNIT).find((e) => e.phase === 'grad' && e.group === 1)!;
  t.same(grad.traffic.receivedBytes, [64, 64]);
  t.same(p.devices.map((d) => d.sentBytes), [128, 128]);
  // Timeline: layer 0 (1152), halo (64 B), layer 1 (3456), backward layer 1 (6912) whose partial
  // leaves 3456 (the filter gradient) before its end, gradient strip (64 B); layer 1's reduce
  // (57 floats: 228 B) then outlasts backward layer 0 (1152), and layer 0's reduce (80 B) follows.
  const backwardOneDone = (1152 + 3456 + 3456) / 1e9 + 128 / MIB;
  t.ok(Math.abs(p.stepSeconds - (backwardOneDone + 308 / MIB)) < 1e-12, `step ${p.stepSeconds}`);
  t.ok(Math.abs(p.reduceSeconds - (308 / MIB - 1152e-9)) < 1e-12);
});

/** UNIT, but moving a MiB costs the device one CPU second. */
const HANDLING: DeviceProfile = { ...UNIT, link: { ...UNIT.link, cpuMsPerMiB: 1000 } };

t.test('moving bytes costs CPU: the last ring is as slow as the CPU that handles it', async (t) => {
  const p = predictStep(keptPlan(TWO_CONVS, '1x2', 2, 'all'), HANDLING);
  const computeSeconds = (4896 + 6912 + 1440) / 1e9;
  // The ring moves 308 B out and 308 B in per device: 616 B of CPU against 308 B of link time.
  t.ok(Math.abs(p.stepSeconds - (computeSeconds + 616 / MIB)) < 1e-12, `step ${p.stepSeconds}`);
});

t.test('strip CPU is paid by sender and receiver; a ring\'s CPU by the next window', async (t) => {
  const p = predictStep(keptPlan(TWO_CONVS, '1x2', 2, 'each'), HANDLING);
  // Halo and gradient strip: 64 B out, on the link, and in: 3 x 64 B each. Layer 1's ring (228 B
  // each way) takes 456 B of CPU from window 0 (layer 0's filter gradient, 1152 FLOPs), and layer
  // 0's ring (80 B each way) ends the step with its 160 B of CPU, longer than its link time.
  const expected = (1152 + 3456 + 3456 + 1152) / 1e9 + (192 + 192 + 456 + 160) / MIB;
  t.ok(Math.abs(p.stepSeconds - expected) < 1e-12, `step ${p.stepSeconds}, expected ${expected}`);
});

t.test('a strip sent while a ring runs waits for one round of it and delays the ring', async (t) => {
  // Three convs 1 -> 2 -> 2 -> 64 channels on 8x8, grid 1x2, a group per layer. Per tile (8x4
  // cores): forward 1152, 2304, 73728 FLOPs; every halo and gradient strip one column of 2
  // channels, 64 B.
  const net: Network = { ...TWO_CONVS, layers: [convLayer(2, 3), convLayer(2, 3), convLayer(64, 3)] };
  const p = predictStep(keptPlan(net, '1x2', 2, 'each'), UNIT);
  // Forward with two halos, then window 2 (2 x 73728; its strip, 61 us, lands while the filter
  // gradient, 74 us, still runs): done2.
  const done2 = (1152 + 2304 + 73728 + 2 * 73728) / 1e9 + 128 / MIB;
  // Layer 2's ring: 3*3*2*64 + 64 = 1216 floats, 4864 B each way in 2 rounds of 2432 B. Window 1's
  // strip leaves 2304 FLOPs into window 1, waits one round, arrives after 2432 + 64 B and pushes
  // the ring's end to 4864 + 64 B; layer 1's ring (38 floats, 152 B) and layer 0's (80 B) follow.
  t.ok(Math.abs(p.stepSeconds - (done2 + (4864 + 64 + 152 + 80) / MIB)) < 1e-12, `step ${p.stepSeconds}`);
});

t.test('strips between tiles of one device are copies on it, not link traffic', async (t) => {
  const plan = keptPlan(TWO_CONVS, '1x2', 1, 'each');
  // Each tile copies one column of 8 rows x 2 channels from the other: 2 x 16 floats per point.
  for (const e of planExchanges(plan, UNIT)) {
    t.same(e.traffic.localFloats, [32], `${e.phase} ${e.group}`);
    t.same(e.traffic.sentBytes, [0]);
  }
});

t.test('link and ring arithmetic', async (t) => {
  // 4 rounds of a 30-float segment in 3 chunks: 12 messages, but the chunks stream behind the first,
  // so 4 latencies, not 12.
  t.same(ringAllReduceCost(90, 3, { mibPerSecond: 1, latencyMs: 1, maxMessageFloats: 10, cpuMsPerMiB: 0 }), {
    bytesPerDevice: 480, messagesPerDevice: 12, rounds: 4, seconds: 480 / MIB + 0.004,
  });
  t.equal(ringAllReduceCost(90, 1, UNIT.link).seconds, 0);
  // Device 0 gets 3 messages from devices 1-3 (1 KiB each), device 1 sends 2 of 2 KiB: the latency is
  // paid once per exchange point, and the busiest link decides.
  const link = { mibPerSecond: 1, latencyMs: 5, maxMessageFloats: 10, cpuMsPerMiB: 0 };
  const traffic = {
    sentBytes: [0, 2048, 1024, 1024], receivedBytes: [4096, 0, 0, 0], sentMessages: [0, 2, 1, 1], receivedMessages: [4, 0, 0, 0],
    senders: [new Set([1, 2, 3]), new Set<number>(), new Set<number>(), new Set<number>()], localFloats: [0, 0, 0, 0],
  };
  t.equal(exchangeWaitSeconds(traffic, link, 0), 4096 / MIB + 0.005);
  t.equal(exchangeWaitSeconds(traffic, link, 1), 0, 'nothing to wait for');
  // Message counts follow the transport's row bands.
  const random = seededRandom(5);
  for (let i = 0; i < 200; i++) {
    const rows = between(random, 1, 40);
    const perRow = between(random, 1, 500);
    const max = between(random, perRow, 3000);
    const region = { rows: { start: 3, end: 3 + rows }, cols: { start: 0, end: 1 } };
    t.equal(stripMessages(rows, rows * perRow, max), rowBands(region, rows * perRow, max).length);
  }
});

t.test('list scheduling on workers', async (t) => {
  const two: DeviceProfile = { ...UNIT, compute: { ...UNIT.compute, workers: 2, parallelEfficiency: 0.5 } };
  const tasks = [1, 1, 1].map((total) => ({ total, afterPartial: 0.25 }));
  // Two threads at half speed: 2 + 2 on one, 2 on the other.
  t.same(scheduleTasks(tasks, two), { makespan: 4, partialsOut: 3.5 });
  t.same(scheduleTasks(tasks.slice(0, 1), two), { makespan: 1, partialsOut: 0.75 }, 'one task runs alone at full speed');
  t.same(scheduleTasks([], two), { makespan: 0, partialsOut: 0 });
});

const front160 = withInputSize(presetCfg('yolov2-front').network, 160, 160);

t.test('one device has no traffic, only compute and copies between its tiles', async (t) => {
  const profile = builtinProfile('pi3');
  for (const grouping of ['each', 'all', '0,8,10,12,14']) {
    const p = predictStep(planFor(front160, '2x2', 1, grouping), profile);
    t.ok(p.devices.every((d) => d.sentBytes === 0 && d.receivedBytes === 0 && d.messages === 0), grouping);
    t.equal(p.reduceBytesPerDevice, 0);
    t.equal(p.reduceSeconds, 0);
    // Strips between its own tiles are copies: one elementwise pass over their floats.
    const copies = p.exchanges.reduce((sum, e) => sum + e.traffic.localFloats[0]!, 0) / (profile.compute.elementwiseGflops * 1e9);
    t.equal(copies > 0, grouping !== 'all', `${grouping}: copies ${copies}`);
    // Halo copies wait for nothing else; gradient copies may hide behind the filter gradient.
    const halo = p.exchanges.filter((e) => e.phase === 'halo').reduce((sum, e) => sum + e.traffic.localFloats[0]!, 0) / (profile.compute.elementwiseGflops * 1e9);
    t.ok(p.stepSeconds >= p.computeSeconds + halo - 1e-9 && p.stepSeconds <= p.computeSeconds + copies + 1e-9, `${grouping}: step ${p.stepSeconds}, compute ${p.computeSeconds}, copies ${copies} (halo ${halo})`);
  }
});

t.test('`all` has the most redundant compute and no strips; `each` the least compute', async (t) => {
  const profile = builtinProfile('pi3');
  const random = seededRandom(11);
  const all = predictStep(planFor(front160, '2x3', 6, 'all'), profile);
  const each = predictStep(planFor(front160, '2x3', 6, 'each'), profile);
  t.ok(all.devices.every((d) => d.sentBytes === 0 && d.messages === 0));
  t.ok(each.devices.every((d) => d.messages > 0));
  for (let i = 0; i < 12; i++) {
    const g = randomGrouping(random, 16).text;
    const other = predictStep(planFor(front160, '2x3', 6, g), profile);
    t.ok(other.redundancy <= all.redundancy, `${g}: redundancy ${other.redundancy} <= all ${all.redundancy}`);
    t.ok(other.redundancy >= each.redundancy, `${g}: redundancy ${other.redundancy} >= each ${each.redundancy}`);
  }
  // `each` computes only cores; its one redundant layer is layer 0's forward again (its cheap stash).
  const layer0 = front160.layers[0]!;
  const layer0Flops = 2 * 160 * 160 * 3 * 9 * (layer0.kind === 'conv' ? layer0.filters : 0);
  const unpartitioned = unpartitionedFlops(planFor(front160, '2x3', 6, 'each'), profile);
  t.ok(all.redundancy > 1.2, `all ${all.redundancy}`);
  t.ok(Math.abs(each.redundancy - (1 + layer0Flops / unpartitioned)) < 1e-12, `each ${each.redundancy}`);
  t.equal(predictStep(planFor(front160, '2x3', 6, 'each', 'each', 1, 0), profile).redundancy, 1, 'each keeping every stash: none');
});

t.test('recomputing a window costs compute that reusing the forward stash does not', async (t) => {
  const profile = builtinProfile('pi3');
  const reuse = predictStep(planFor(front160, '2x2', 4, '0,8', '0,8'), profile);
  const recompute = predictStep(planFor(front160, '2x2', 4, '0,8', '0,4,8'), profile);
  t.ok(recompute.computeSeconds > reuse.computeSeconds);
  t.ok(recompute.devices[0]!.flops > reuse.devices[0]!.flops);
  t.ok(planExchanges(planFor(front160, '2x2', 4, '0,8', '0,10'), profile).some((e) => e.phase === 'recompute'), 'a window from 10 recomputes from 8');
});

t.test('memory is estimateDeviceMemory with the profile, per device', async (t) => {
  const profile = builtinProfile('pi3');
  const plan = planFor(front160, '2x3', 4, '0,8,10,12,14');
  const memory = predictMemory(plan, profile);
  t.equal(memory.perDevice.length, 4);
  t.ok(memory.complete);
  t.equal(memory.perDevice[1], estimateDeviceMemory(plan, 1, { runtimeBytes: 60 * MIB, workers: 4 }).totalBytes);
  t.equal(memory.peakBytes, Math.max(...memory.perDevice));
  const stopped = predictMemory(plan, profile, 1);
  t.same(stopped.perDevice, memory.perDevice.slice(0, 1), 'stops at the first device over the bound');
  t.notOk(stopped.complete);
  t.same(predictPlan(plan, profile).memory, memory);
});
