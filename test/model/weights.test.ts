import t from 'tap';
import { parseCfg } from '../../src/model/cfg.js';
import { presetCfg } from '../../src/model/presets.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { limitFront } from '../../src/model/tail-layers.js';
import { shareParams } from '../../src/model/shared-params.js';
import { INITIAL_GAIN, decodeWeights, encodeWeights, initialParams, initialTailParams, randomParams, randomTailParams } from '../../src/model/weights.js';

t.test('round trip through Darknet .weights', async (t) => {
  const net = presetCfg('tiny').network;
  const params = randomParams(net, 9);
  const bytes = encodeWeights(net, params, 1234);
  const { header, params: back } = decodeWeights(net, bytes);
  t.same(header, { major: 0, minor: 2, revision: 0, seen: 1234 });
  t.same(back, params);
});

t.test("Darknet's order: biases, BN scales/means/variances, then [out][in][kh][kw] weights", async (t) => {
  const net = parseCfg('[net]\nwidth=4\nheight=4\nchannels=2\n[convolutional]\nbatch_normalize=1\nfilters=3\nsize=2\npad=1\nactivation=leaky\n').network;
  const floats = [
    10, 11, 12, // biases
    20, 21, 22, // scales
    30, 31, 32, // rolling means
    40, 41, 42, // rolling variances
    ...Array.from({ length: 3 * 2 * 2 * 2 }, (_, i) => i), // weights[o][c][y][x]
  ];
  const bytes = new Uint8Array(16 + floats.length * 4);
  const view = new DataView(bytes.buffer);
  view.setInt32(0, 0, true); view.setInt32(4, 1, true); // version 0.1: 32-bit "seen"
  view.setInt32(12, 77, true);
  floats.forEach((f, i) => view.setFloat32(16 + i * 4, f, true));
  const { header, params } = decodeWeights(net, bytes, 'w.weights');
  t.equal(header.seen, 77);
  const p = params[0]!;
  t.same([...p.biases], [10, 11, 12]);
  t.same([...p.bn!.scales], [20, 21, 22]);
  t.same([...p.bn!.variance], [40, 41, 42]);
  // tfjs filter[y][x][c][o] = darknet[o][c][y][x] = ((o * 2 + c) * 2 + y) * 2 + x.
  const at = (y: number, x: number, c: number, o: number) => p.filter[((y * 2 + x) * 2 + c) * 3 + o];
  t.equal(at(0, 0, 0, 0), 0);
  t.equal(at(0, 1, 0, 0), 1);
  t.equal(at(1, 0, 0, 0), 2);
  t.equal(at(0, 0, 1, 0), 4);
  t.equal(at(0, 0, 0, 1), 8);
  t.equal(at(1, 1, 1, 2), 23);
});

t.test('truncated files are refused with the position', async (t) => {
  const net = presetCfg('tiny').network;
  const bytes = encodeWeights(net, randomParams(net, 1));
  t.throws(() => decodeWeights(net, bytes.subarray(0, bytes.length - 4), 'cut.weights'), /cut\.weights: ends at byte \d+ while reading layer 4 weights/);
  t.throws(() => decodeWeights(net, bytes.subarray(0, 10), 'tiny.weights'), /too short/);
});

const TAIL_CFG = `[net]\nwidth=6\nheight=6\nchannels=2\n[convolutional]\nbatch_normalize=1\nfilters=3\nsize=3\npad=1\nactivation=leaky
[maxpool]\nsize=2\nstride=2\n[convolutional]\nbatch_normalize=1\nfilters=4\nsize=1\nactivation=leaky
[avgpool]\n[connected]\noutput=5\nactivation=linear\n[softmax]\n`;

t.test('a full file: front then tail, round trip', async (t) => {
  const parsed = parseCfg(TAIL_CFG, 'tail.cfg');
  const { net, tail } = limitFront(parsed.network, parseTail(parsed.tail, parsed.file), 2);
  const params = randomParams(net, 4);
  const tailParams = randomTailParams(net, tail, 4);
  t.same(randomParams(net, 4), params, 'the front draws the same weights with or without a tail');
  const bytes = encodeWeights(net, params, 99, { layers: tail, params: tailParams });
  // Front: 3 + 3*3 + 3*3*3*2 floats; tail conv: 4 + 4*3 + 1*1*3*4; connected: 5 + 4*5.
  t.equal(bytes.length, 20 + 4 * ((3 + 9 + 54) + (4 + 12 + 12) + (5 + 20)));
  const back = decodeWeights(net, bytes, 'full.weights', tail);
  t.same(back.params, params);
  t.same(back.tailParams, tailParams);
  t.equal(back.header.seen, 99);
  // The same bytes are the file of the unsplit network (front of 3 layers): Darknet's layer order.
  const whole = limitFront(parsed.network, parseTail(parsed.tail, parsed.file), 3);
  const unsplit = decodeWeights(whole.net, bytes, 'full.weights', whole.tail);
  t.same(unsplit.params[2], tailParams[0]);
  t.same(unsplit.tailParams![1], tailParams[2]);
  t.throws(() => decodeWeights(net, bytes.subarray(0, bytes.length - 4), 'short.weights', tail), /short\.weights: ends at byte \d+ while reading tail layer 2 weights/);
  const long = new Uint8Array(bytes.length + 8);
  long.set(bytes);
  t.throws(() => decodeWeights(net, long, 'long.weights', tail), /long\.weights: 8 bytes remain after the last tail layer \(the model's weights end at byte \d+\)/);
  t.same(decodeWeights(net, long, 'long.weights').params, params, 'without a tail, bytes after the front are ignored as Darknet does');
});

t.test("Darknet's connected order: biases, then weights [outputs][inputs] with inputs in CHW order", async (t) => {
  // A 2x3x2 front output straight into a connected layer of 2 outputs.
  const parsed = parseCfg('[net]\nwidth=3\nheight=2\nchannels=2\n[maxpool]\nsize=1\nstride=1\n[connected]\noutput=2\nactivation=linear\n[softmax]\n');
  const tail = parseTail(parsed.tail, parsed.file);
  const floats = [10, 11, ...Array.from({ length: 2 * 12 }, (_, i) => i)];
  const bytes = new Uint8Array(20 + floats.length * 4);
  const view = new DataView(bytes.buffer);
  view.setInt32(4, 2, true);
  floats.forEach((f, i) => view.setFloat32(20 + i * 4, f, true));
  const connected = decodeWeights(parsed.network, bytes, 'c.weights', tail).tailParams![0]!;
  t.same([...connected.biases], [10, 11]);
  // Ours: filter[(y * 3 + x) * 2 + c][o] = darknet[o][(c * 2 + y) * 3 + x] = o * 12 + (c * 2 + y) * 3 + x.
  const at = (y: number, x: number, c: number, o: number) => connected.filter[((y * 3 + x) * 2 + c) * 2 + o];
  t.equal(at(0, 0, 0, 0), 0);
  t.equal(at(0, 1, 0, 0), 1);
  t.equal(at(1, 0, 0, 0), 3);
  t.equal(at(0, 0, 1, 0), 6);
  t.equal(at(0, 0, 0, 1), 12);
  t.equal(at(1, 2, 1, 1), 23);
  t.same(encodeWeights(parsed.network, [null], 0, { layers: tail, params: [connected, null] }), bytes, 'and back to the same bytes');
});

t.test('initialParams: identity batch norm, zero biases, He-uniform filters; the tail from its own stream', async (t) => {
  const parsed = presetCfg('yolov2-shapes');
  const { net, tail } = limitFront(parsed.network, parseTail(parsed.tail, parsed.file), 16);
  const params = initialParams(net, 3);
  const conv = net.layers[0]!;
  if (conv.kind !== 'conv') throw new Error('layer 0 is a conv');
  const p = params[0]!;
  t.ok(p.bn!.scales.every((v) => v === 1) && p.bn!.mean.every((v) => v === 0) && p.bn!.variance.every((v) => v === 1), 'BN is the identity');
  t.ok(params.every((q) => !q || q.biases.every((v) => v === 0)), 'biases are 0');
  const bound = INITIAL_GAIN * Math.sqrt(2 / (conv.size * conv.size * 3));
  const max = p.filter.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  t.ok(max <= bound && max > 0.9 * bound, `filters within +-${bound.toFixed(3)} (max ${max.toFixed(3)})`);
  t.same(initialParams(net, 3), params, 'seeded');
  const tailParams = initialTailParams(net, tail, 3);
  t.equal(tailParams.filter((q) => q).length, 2, 'the two head convolutions');
  t.ok(tailParams[1]!.filter.length === 128 * 40 && !tailParams[1]!.bn, 'the 1x1 to 40 channels, no BN');
  t.same(initialParams(net, 3), params, 'the tail does not change the front');
});

t.test('shareParams copies plain arrays once and adopts parameters already in its layout', async (t) => {
  const net = presetCfg('tiny').network;
  const params = initialParams(net, 3);
  const shared = shareParams(net, params);
  t.ok(shared.buffer instanceof SharedArrayBuffer);
  t.not(shared.params[0]!.filter, params[0]!.filter, 'plain arrays are copied');
  t.same(shared.params.map((p) => p && Array.from(p.filter.slice(0, 4))), params.map((p) => p && Array.from(p.filter.slice(0, 4))));
  const again = shareParams(net, shared.params);
  t.equal(again.buffer, shared.buffer, 'already shared: the same buffer, no second copy');
  t.equal(again.params, shared.params);
  // A view into the same buffer at another offset is not the layout: copied into a new buffer.
  const last = shared.params.length - 1 - [...shared.params].reverse().findIndex((p) => p !== null);
  const moved = shared.params.map((p, l) => (l === last ? { ...p!, filter: new Float32Array(shared.buffer, 0, p!.filter.length) } : p));
  t.not(shareParams(net, moved).buffer, shared.buffer, 'views out of layout are copied');
  const biased = shared.params.map((p) => p && { ...p, biases: p.biases.slice() });
  t.not(shareParams(net, biased).buffer, shared.buffer, 'one array outside the buffer: copied');
});
