import t from 'tap';
import { CfgError, parseCfg } from '../../src/model/cfg.js';
import { mapShapes } from '../../src/model/layers.js';
import { presetCfg, withInputSize } from '../../src/model/presets.js';

t.test('the YOLOv2 front has the shapes of FACTS.md', async (t) => {
  const { network } = presetCfg('yolov2-front');
  const maps = mapShapes(network);
  t.equal(network.layers.length, 16);
  t.same(maps[0], { height: 608, width: 608, channels: 3 });
  t.same(maps[16], { height: 38, width: 38, channels: 256 });
  t.same(maps.map((m) => m.channels).slice(1), [32, 32, 64, 64, 128, 64, 128, 128, 256, 128, 256, 256, 512, 256, 512, 256]);
  t.same(network.layers.map((l) => `${l.kind}${l.size}/${l.stride}`), [
    'conv3/1', 'maxpool2/2', 'conv3/1', 'maxpool2/2', 'conv3/1', 'conv1/1', 'conv3/1', 'maxpool2/2',
    'conv3/1', 'conv1/1', 'conv3/1', 'maxpool2/2', 'conv3/1', 'conv1/1', 'conv3/1', 'conv1/1',
  ]);
  t.same(mapShapes(withInputSize(network, 160, 160))[16], { height: 10, width: 10, channels: 256 });
});

t.test('Darknet defaults and shape rules', async (t) => {
  const { network, tail } = parseCfg(`
[net]
width=13
height=11
channels=2
momentum=0.8
# a comment
[convolutional]
filters=4
size=3
stride=2
pad=1
activation=leaky
[maxpool]
size=3
stride=1
[convolutional]
size=2
padding=1
filters=3
activation=relu
[region]
classes=3
`, 'x.cfg');
  const maps = mapShapes(network);
  // conv 3/2 pad 1: (11 + 2 - 3) / 2 + 1 = 6 rows, (13 + 2 - 3) / 2 + 1 = 7 cols.
  t.same(maps[1], { height: 6, width: 7, channels: 4 });
  // maxpool 3/1, default padding size-1 = 2: (6 + 2 - 3) / 1 + 1 = 6.
  t.same(maps[2], { height: 6, width: 7, channels: 4 });
  t.equal(network.layers[1]!.padBefore, 1);
  // conv 2/1 with explicit padding=1 on both sides: 6 + 2 - 2 + 1 = 7.
  t.same(maps[3], { height: 7, width: 8, channels: 3 });
  t.equal(network.hyper.momentum, 0.8);
  t.equal(network.hyper.decay, 0.0001);
  t.equal(tail.length, 1);
  t.equal(tail[0]!.type, 'region');
});

t.test('errors name the file, line and key', async (t) => {
  const net = '[net]\nwidth=8\nheight=8\nchannels=3\n';
  const cases: [string, RegExp][] = [
    [`${net}[convolutional]\nfilters=abc\n`, /bad\.cfg:6: "filters" must be an integer, got "abc"/],
    [`${net}[convolutional]\nactivation=mish\n`, /bad\.cfg:6: "activation" must be one of leaky\|linear\|relu, got "mish"/],
    [`${net}[convolutional]\ndilation=2\n`, /bad\.cfg:6: \[convolutional\] key "dilation" is not supported/],
    [`${net}[convolutional]\nsize=0\n`, /bad\.cfg:6: "size" must be at least 1, got 0/],
    [`${net}[convolutional]\nfilters\n`, /bad\.cfg:6: expected "key=value"/],
    [`width=3\n`, /bad\.cfg:1: "width=3" appears before any \[section\]/],
    [`[convolutional]\n`, /bad\.cfg:1: the first section must be \[net\]/],
    [`[net]\nwidth=8\nchannels=3\n[maxpool]\n`, /bad\.cfg:1: \[net\] needs "height"/],
    [`${net}[route]\nlayers=-1\n`, /no leading \[convolutional\] or \[maxpool\]/],
    [`${net}[convolutional]\nsize=11\n`, /bad\.cfg:1: layer 0 .* turns a 8x8 map into/],
    [`${net}[convolutional]\nsize=1\nsize=3\n`, /bad\.cfg:7: key "size" repeated/],
  ];
  for (const [text, pattern] of cases) {
    t.throws(() => parseCfg(text, 'bad.cfg'), pattern, pattern.source);
    try { parseCfg(text, 'bad.cfg'); } catch (e) { t.type(e, CfgError); }
  }
});
