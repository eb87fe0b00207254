import t from 'tap';
import { CfgError, parseCfg } from '../../src/model/cfg.js';
import { mapShapes } from '../../src/model/layers.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { limitFront, tailClasses, tailShapes } from '../../src/model/tail-layers.js';

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
    [`${NET}[route]\nlayers=-1\n`, /^bad\.cfg:10: \[route\] is not supported in the tail \(supported: \[convolutional\], \[maxpool\], \[avgpool\], \[connected\], \[softmax\]\)/],
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
