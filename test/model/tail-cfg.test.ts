import t from 'tap';
import { CfgError, parseCfg } from '../../src/model/cfg.js';
import { presetCfg } from '../../src/model/presets.js';
import { mapShapes } from '../../src/model/layers.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { type RegionLayer, describeTail, limitFront, tailClasses, tailShapes, tailTruthKind } from '../../src/model/tail-layers.js';

const NET = '[net]\nwidth=12\nheight=10\nchannels=3\n[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n';

const tailOf = (text: string, file = 'model.cfg') => {
  const parsed = parseCfg(text, file);
  return { parsed, tail: parseTail(parsed.tail, parsed.file) };
};

t.test('tail layers with Darknet keys, defaults and shapes', async (t) => {
  const { parsed, tail } = tailOf(`${NET}
[avgpool]
[connected]
output=7
activation=relu
[softmax]
groups=1
`);
  t.same(tail, [{ kind: 'avgpool' }, { kind: 'connected', outputs: 7, activation: 'relu' }, { kind: 'softmax' }]);
  const input = mapShapes(parsed.network)[1]!;
  t.same(tailShapes(input, tail).map((m) => [m.height, m.width, m.channels]), [[10, 12, 4], [1, 1, 4], [1, 1, 7], [1, 1, 7]]);
  t.equal(tailClasses(input, tail), 7);
  t.same(tailOf(`${NET}[avgpool]\n[connected]\nactivation=linear\n[connected]\noutput=2\nactivation=leaky\n[softmax]\n`).tail[1], { kind: 'connected', outputs: 1, activation: 'linear' }, 'connected output defaults to 1, as in Darknet');
  t.same(tailOf(NET).tail, [], 'no sections after the front: a front-only model');
});

t.test('--front moves the front\'s later layers into the tail; a front-only model drops them', async (t) => {
  const { parsed, tail } = tailOf(`${NET}[maxpool]\nsize=2\nstride=2\n[convolutional]\nfilters=2\nsize=1\nactivation=linear\n[avgpool]\n[softmax]\n`);
  const split = limitFront(parsed.network, tail, 1);
  t.equal(split.net.layers.length, 1);
  t.same(split.tail.map((l) => l.kind), ['maxpool', 'conv', 'avgpool', 'softmax']);
  t.same(limitFront(parsed.network, [], 2).tail, []);
  t.throws(() => limitFront(parsed.network, tail, 4), /the front must keep 1\.\.3 layers, got 4/);
});

t.test('tail errors name the file and line', async (t) => {
  const cases: [string, RegExp][] = [
    [`${NET}[route]\nlayers=-1\n`, /^bad\.cfg:10: \[route\] is not supported in the tail \(supported: \[convolutional\], \[maxpool\], \[avgpool\], \[connected\], \[softmax\], \[region\]\)/],
    [`${NET}[avgpool]\nsize=2\n[softmax]\n`, /^bad\.cfg:11: \[avgpool\] key "size" is not supported/],
    [`${NET}[avgpool]\n[connected]\noutput=3\nactivation=leaky\ndropout=0.5\n[softmax]\n`, /^bad\.cfg:14: \[connected\] key "dropout" is not supported/],
    [`${NET}[avgpool]\n[connected]\noutput=3\n[softmax]\n`, /^bad\.cfg:11: \[connected\] needs "activation" .*logistic, is not supported/],
    [`${NET}[avgpool]\n[connected]\noutput=x\nactivation=leaky\n[softmax]\n`, /^bad\.cfg:12: "output" must be an integer, got "x"/],
    [`${NET}[avgpool]\n[connected]\noutput=3\nactivation=mish\n[softmax]\n`, /^bad\.cfg:13: "activation" must be one of leaky\|linear\|relu, got "mish"/],
    [`${NET}[avgpool]\n[softmax]\ngroups=2\n`, /^bad\.cfg:12: "groups" must be one of 1, got "2"/],
    [`${NET}[avgpool]\n[softmax]\ntemperature=2\n`, /^bad\.cfg:12: \[softmax\] key "temperature" is not supported/],
    [`${NET}[avgpool]\n[softmax]\n[cost]\ntype=sse\n`, /^bad\.cfg:12: \[cost\] after \[softmax\]/],
    [`${NET}[avgpool]\n[cost]\n`, /^bad\.cfg:11: \[cost\] is not supported: Darknet adds its squared-error gradient/],
    [`${NET}[avgpool]\n`, /^bad\.cfg:10: the network ends with \[avgpool\]: a tail must end with \[softmax\]/],
    [`${NET}[avgpool]\n[convolutional]\nfilters=2\nactivation=leaky\ngroups=2\n[softmax]\n`, /^bad\.cfg:14: \[convolutional\] key "groups" is not supported/],
  ];
  for (const [text, pattern] of cases) {
    t.throws(() => tailOf(text, 'bad.cfg'), pattern, pattern.source);
    try { tailOf(text, 'bad.cfg'); } catch (e) { t.type(e, CfgError); }
  }
});

t.test('shape errors name the tail layer', async (t) => {
  const input = { height: 3, width: 3, channels: 4 };
  t.throws(() => tailShapes(input, [{ kind: 'softmax' }]), /tail layer 0 \(softmax\) gets a 3x3x4 map: it needs a 1x1 map/);
  t.throws(() => tailShapes(input, [{ kind: 'connected', outputs: 1, activation: 'linear' }, { kind: 'softmax' }]), /softmax needs at least 2 classes/);
  t.throws(() => tailShapes(input, [{ kind: 'conv', filters: 1, size: 5, stride: 1, padBefore: 0, padTotal: 0, activation: 'linear', batchNormalize: false }]), /tail layer 0 \(conv size 5 stride 1\) turns a 3x3 map into -1x-1/);
});

t.test('[region]: Darknet keys and defaults, the truth a tail needs', async (t) => {
  // 6 channels after the front: one anchor x (5 + 1 class).
  const head = '[net]\nwidth=4\nheight=4\nchannels=3\n[convolutional]\nfilters=6\nsize=1\nactivation=linear\n';
  const { parsed, tail } = tailOf(`${head}[region]\nclasses=1\nsoftmax=1\n`);
  t.same(tail, [{
    kind: 'region', classes: 1, anchors: [{ w: 0.5, h: 0.5 }], thresh: 0.5, biasMatch: false, rescore: false,
    objectScale: 1, noobjectScale: 1, classScale: 1, coordScale: 1, logisticGradient: true,
  }], 'num=1, anchors .5, thresh .5 and unit scales by default');
  const input = mapShapes(parsed.network)[1]!;
  t.same(tailShapes(input, tail).map((m) => [m.height, m.width, m.channels]), [[4, 4, 6], [4, 4, 6]]);
  t.equal(tailClasses(input, tail), 1);
  t.equal(tailTruthKind(tail), 'boxes');
  t.equal(tailTruthKind(tailOf(`${NET}[avgpool]\n[softmax]\n`).tail), 'classes');
  t.equal(tailTruthKind([]), null);
  t.match(describeTail(tail), /region 1 anchors 1 classes/);

  const yolo = tailOf(`[net]\nwidth=4\nheight=4\nchannels=3\n[convolutional]\nfilters=16\nsize=1\nactivation=linear\n[region]
anchors=1.08,1.19,3.42,4.41
bias_match=1
classes=3
coords=4
num=2
softmax=1
jitter=.3
rescore=1
object_scale=5
noobject_scale=0.5
class_scale=2
coord_scale=3
absolute=1
thresh=.6
random=1
logistic_gradient=0
`).tail[0];
  t.same(yolo, {
    kind: 'region', classes: 3, anchors: [{ w: 1.08, h: 1.19 }, { w: 3.42, h: 4.41 }], thresh: 0.6, biasMatch: true, rescore: true,
    objectScale: 5, noobjectScale: 0.5, classScale: 2, coordScale: 3, logisticGradient: false,
  });
});

t.test('[region] errors name the file and line', async (t) => {
  const head = '[net]\nwidth=4\nheight=4\nchannels=3\n[convolutional]\nfilters=16\nsize=1\nactivation=linear\n';
  const cases: [string, RegExp][] = [
    [`${head}[region]\nclasses=3\nnum=2\n`, /^bad\.cfg:9: \[region\] needs "softmax=1"/],
    [`${head}[region]\nclasses=3\nnum=2\nsoftmax=0\n`, /^bad\.cfg:12: "softmax" must be one of 1, got "0"/],
    [`${head}[region]\nclasses=3\nnum=2\nsoftmax=1\ncoords=5\n`, /^bad\.cfg:13: "coords" must be one of 4, got "5"/],
    [`${head}[region]\nclasses=3\nnum=2\nsoftmax=1\nanchors=1,2,3\n`, /^bad\.cfg:13: "anchors" has 3 numbers: num=2 needs 4/],
    [`${head}[region]\nclasses=3\nnum=2\nsoftmax=1\nanchors=1,2,0,3\n`, /^bad\.cfg:13: "anchors" must be positive sizes in grid cells, got 0/],
    [`${head}[region]\nclasses=3\nnum=2\nsoftmax=1\nbackground=1\n`, /^bad\.cfg:13: \[region\] key "background" is not supported/],
    [`${head}[region]\nclasses=3\nnum=2\nsoftmax=1\nthresh=high\n`, /^bad\.cfg:13: "thresh" must be a number, got "high"/],
    [`${head}[region]\nclasses=3\nnum=2\nsoftmax=1\n[softmax]\n`, /^bad\.cfg:13: \[softmax\] after \[region\]: the region layer and its loss must be the last layer/],
  ];
  for (const [text, pattern] of cases) {
    t.throws(() => tailOf(text, 'bad.cfg'), pattern, pattern.source);
    try { tailOf(text, 'bad.cfg'); } catch (e) { t.type(e, CfgError); }
  }
  const { parsed, tail } = tailOf(`${head}[region]\nclasses=3\nnum=3\nsoftmax=1\n`);
  t.throws(() => tailShapes(mapShapes(parsed.network)[1]!, tail), /tail layer 0 \(region\) gets 16 channels: 3 anchors x \(4 coords \+ 1 objectness \+ 3 classes\) need 24/);
});

t.test('the yolov2-shapes preset: the YOLOv2 front and a detection head at 96x96, [region] as its tail', async (t) => {
  const parsed = presetCfg('yolov2-shapes');
  const tail = parseTail(parsed.tail, parsed.file);
  const maps = mapShapes(parsed.network);
  t.equal(parsed.network.layers.length, 18, 'the 16 front layers and both head convolutions lead the cfg');
  t.same(maps[16], { height: 6, width: 6, channels: 256 }, 'the YOLOv2 front ends at 6x6x256');
  t.same(maps[18], { height: 6, width: 6, channels: 40 });
  t.equal(tailTruthKind(tail), 'boxes');
  t.equal(tailClasses(maps[18]!, tail), 3);
  t.equal((tail[0] as RegionLayer).anchors.length, 5);
  t.same(tailShapes(maps[18]!, tail).at(-1), maps[18]);
  const moved = limitFront(parsed.network, tail, 16).tail;
  t.same(moved.map((l) => l.kind), ['conv', 'conv', 'region'], '--front 16 runs the head convolutions in the tail');
});
