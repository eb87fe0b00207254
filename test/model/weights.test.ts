import t from 'tap';
import { parseCfg } from '../../src/model/cfg.js';
import { presetCfg } from '../../src/model/presets.js';
import { decodeWeights, encodeWeights, randomParams } from '../../src/model/weights.js';

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
