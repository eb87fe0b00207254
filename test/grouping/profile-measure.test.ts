// The pure parts of `edge profile` (src/loop/profile-device.ts): conv classes and the rules built
// from them, tile shapes, the work a step hands the engine, and the least-squares fit.
import t from 'tap';
import { convRule, parseProfile } from '../../src/grouping/profile.js';
import { builtinProfile } from '../../src/grouping/builtin-profiles.js';
import { calibrationInput, convClasses, convRules, halfInput, leastSquares, overheadNetwork, stepWork, tileRead } from '../../src/loop/profile-device.js';
import { convLayer, mapShapes } from '../../src/model/layers.js';
import { presetCfg, withInputSize } from '../../src/model/presets.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan } from '../../src/tiles/plan.js';

const yolo = presetCfg('yolov2-front').network;

t.test('the YOLOv2 front has 8 conv classes; the rules built from them give each layer its own', async (t) => {
  const classes = convClasses(yolo);
  t.same(classes.map((c) => `${c.kernel}/${c.inChannels}:${c.layers.join(',')}`), [
    '1/128:5', '1/256:9', '1/512:13,15', '3/3:0', '3/32:2', '3/64:4,6', '3/128:8,10', '3/256:12,14',
  ]);
  // Distinct rates per class, so the rule a layer matches can be told apart.
  const measured = classes.map((c, i) => ({
    inChannels: c.inChannels, kernel: c.kernel, flops: 1e9 * (i + 1),
    rates: { read: [1, 1, 1, 1] as const, forwardGflops: 10 + i, inputGradientGflops: 20 + i, filterGradientGflops: 30 + i },
  }));
  const rules = convRules(measured);
  t.equal(rules.length, classes.length + 1);
  const profile = parseProfile({
    name: 'x', compute: { conv: rules, maxpoolForwardGflops: 1, maxpoolBackwardGflops: 1, elementwiseGflops: 1, layerOverheadMs: 0, taskOverheadMs: 0, workers: 1, parallelEfficiency: 1 },
    link: { mibPerSecond: 1, latencyMs: 0, maxMessageFloats: 1, cpuMsPerMiB: 0 }, memory: { runtimeMiB: 1 },
  }, 'rules');
  const maps = mapShapes(yolo);
  classes.forEach((c, i) => {
    for (const l of c.layers) t.equal(convRule(profile, yolo.layers[l]! as never, maps[l]!.channels).forwardGflops, 10 + i, `layer ${l} uses class ${c.kernel}/${c.inChannels}`);
  });
  t.same(rules.filter((r) => r.maxInChannels === undefined).map((r) => r.kernel), [1, 3, undefined], 'the widest class of each kernel is unbounded, then the catch-all');
  // The catch-all is total FLOPs over total seconds (a FLOP-weighted harmonic mean).
  const flops = measured.reduce((s, m) => s + m.flops, 0);
  const seconds = measured.reduce((s, m) => s + m.flops / (m.rates.forwardGflops * 1e9), 0);
  t.equal(rules[rules.length - 1]!.forwardGflops, Number((flops / seconds / 1e9).toPrecision(3)));
  // A wider 1x1 layer than any measured uses the widest 1x1 class; a 5x5 layer the catch-all.
  t.equal(convRule(profile, { ...yolo.layers[13]!, size: 1 } as never, 1024).forwardGflops, 12);
  t.same(convRule(profile, { ...yolo.layers[12]!, size: 5 } as never, 64), rules[rules.length - 1]);
});

t.test('tile shapes: the top-left tile of a grid, padding included', async (t) => {
  const maps = mapShapes(yolo);
  // Layer 0: 608x608x3 -> 608x608x32, 3x3 pad 1: a 2x2 tile's core is 304x304, it reads 306x306.
  t.same(tileRead(yolo.layers[0]!, maps[0]!, maps[1]!, 1, 2, 2), { read: [1, 306, 306, 3], padTop: 1, padLeft: 1 });
  t.same(tileRead(yolo.layers[0]!, maps[0]!, maps[1]!, 1, 1, 1), { read: [1, 610, 610, 3], padTop: 1, padLeft: 1 });
  // Maxpool 2x2 stride 2: a 152x152 core reads 304x304, no padding before.
  t.same(tileRead(yolo.layers[1]!, maps[1]!, maps[2]!, 2, 2, 2), { read: [2, 304, 304, 32], padTop: 0, padLeft: 0 });
  // 1x1 conv: no halo.
  t.same(tileRead(yolo.layers[5]!, maps[5]!, maps[6]!, 1, 2, 2).read, [1, 76, 76, 128]);
  // An odd map: the first tile gets the larger core.
  const odd = mapShapes(withInputSize(yolo, 100, 98));
  t.same(odd[13], { height: 7, width: 7, channels: 512 });
  t.same(tileRead(yolo.layers[12]!, odd[12]!, odd[13]!, 1, 2, 2).read, [1, 6, 6, 256], 'a 7x7 map: a 4x4 core, 6x6 with its halo');
});

t.test('work of a step: engine runs and layer passes per tile', async (t) => {
  const net = overheadNetwork(4);
  t.equal(net.layers.length, 4);
  const plan = (grid: number, forward: string, backward = forward) => buildTilePlan({
    net, grid: { rows: grid, cols: grid }, devices: 1, batch: 1, forwardGroups: parseGrouping(forward, 4), backwardGroups: parseGrouping(backward, 4),
  });
  t.same(stepWork(plan(1, 'all')), { tasks: 2, layerPasses: 8 });
  t.same(stepWork(plan(1, 'each')), { tasks: 8, layerPasses: 8 });
  t.same(stepWork(plan(2, 'each')), { tasks: 32, layerPasses: 32 });
  // Backward 0,2 under forward `all`: each window recomputes from layer 0 (a forward task more).
  t.same(stepWork(plan(1, 'all', '0,2')), { tasks: 1 + 2 * 2, layerPasses: 4 + (2 + 2) + (2 + 4) });
});

t.test('least squares recovers an exact fit and averages noise', async (t) => {
  const rows = [[1, 2, 16], [1, 16, 16], [1, 8, 64], [1, 64, 64]];
  const truth = [3, 0.5, 0.1];
  const exact = rows.map((r) => r.reduce((s, x, i) => s + x * truth[i]!, 0));
  leastSquares(rows, exact).forEach((b, i) => t.ok(Math.abs(b - truth[i]!) < 1e-9, `coefficient ${i}: ${b}`));
  t.throws(() => leastSquares([[1, 1], [1, 1]], [1, 2]), /do not determine/);
});

t.test('half the input, or the input itself when half is too small', async (t) => {
  t.same(halfInput(yolo).input, { height: 304, width: 304, channels: 3 });
  // Two unpadded 3x3 convs turn 6x6 into 2x2; 3x3 would vanish.
  const shrinking = { ...yolo, input: { height: 6, width: 6, channels: 3 }, layers: [convLayer(4, 3, 1, { pad: 0 }), convLayer(4, 3, 1, { pad: 0 })] };
  t.equal(halfInput(shrinking), shrinking);
});

t.test('the elementwise calibration times whole inputs whose steps are short, else half', async (t) => {
  // this-machine predicts about 4.4 s per 608x608 step without elementwise passes, 0.6 s at 224.
  const profile = builtinProfile('this-machine');
  t.same(calibrationInput(withInputSize(yolo, 608, 608), profile).input, { height: 304, width: 304, channels: 3 }, '608: half');
  t.same(calibrationInput(withInputSize(yolo, 224, 224), profile).input, { height: 224, width: 224, channels: 3 }, '224: whole');
  t.same(calibrationInput(withInputSize(yolo, 96, 96), profile).input, { height: 96, width: 96, channels: 3 }, '96: whole');
});
