// `edge detect` as users run it, on a bundled data/shapes image with weights made here: random,
// except the last convolution, whose zero filter and chosen biases put one known box in every cell.
// (All of yolov2-shapes' convolutions lead the cfg, so they are its front; the tail is [region].)
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { presetCfg } from '../../src/model/presets.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { encodeWeights, randomParams, randomTailParams } from '../../src/model/weights.js';

const edge = (args: string[]) => spawnSync(process.execPath, ['dist/edge.js', 'detect', ...args], { encoding: 'utf8' });
const IMAGE = 'data/shapes/images/valid/000000.png';
const NAMES = 'data/shapes/shapes.names';

const parsed = presetCfg('yolov2-shapes');
const net = parsed.network;
const tail = parseTail(parsed.tail, parsed.file);
const params = randomParams(net, 5);
const tailParams = randomTailParams(net, tail, 5);
// Anchor 0 of every cell: centre offset 0.5 (x = y = 0), size one cell (exp(w) * 0.94 = 1), objectness
// logistic(3) = 0.9526, class logits (0, 5, 0): p(square) = e^5 / (e^5 + 2) = 0.98670, score 0.93993.
// The other anchors: objectness logistic(-20), nothing. 6x6 cells of 16 pixels, boxes touch but
// do not overlap, so NMS keeps all 36.
const last = params[params.length - 1]!;
last.filter.fill(0);
last.biases.fill(0);
for (let n = 0; n < 5; n++) last.biases[n * 8 + 4] = -20;
last.biases.set([0, 0, Math.log(1 / 0.94), Math.log(1 / 0.94), 3, 0, 5, 0], 0);
const WEIGHTS = encodeWeights(net, params, 0, { layers: tail, params: tailParams });

t.test('boxes printed in pixels and drawn', async (t) => {
  const dir = t.testdir({});
  const weights = join(dir, 'shapes.weights');
  writeFileSync(weights, WEIGHTS);
  const out = join(dir, 'boxes.png');
  const run = edge(['--model', 'yolov2-shapes', '--weights', weights, '--names', NAMES, '--out', out, '--backend', 'wasm', IMAGE]);
  t.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  t.equal(lines.length, 36, 'one box per cell');
  const expected = new Set<string>();
  for (let j = 0; j < 6; j++) for (let i = 0; i < 6; i++) expected.add(`square 0.940 left=${16 * i} top=${16 * j} right=${Math.min(16 * i + 16, 95)} bottom=${Math.min(16 * j + 16, 95)}`);
  t.same(new Set(lines), expected);
  t.match(run.stderr, /36 boxes drawn into .*boxes\.png \(circle: red, square: green, triangle: blue\)/);

  const png = PNG.sync.read(readFileSync(out));
  t.same([png.width, png.height], [96, 96]);
  const pixel = (x: number, y: number) => [...png.data.subarray((y * 96 + x) * 4, (y * 96 + x) * 4 + 3)];
  t.same(pixel(16, 40), [0, 200, 0], 'box edges are green (square)');
  const source = PNG.sync.read(readFileSync(IMAGE));
  t.same(pixel(40, 40), [...source.data.subarray((40 * 96 + 40) * 4, (40 * 96 + 40) * 4 + 3)], 'inside a box the image is unchanged');

  const enlarged = join(dir, 'boxes-x3.png');
  const scaled = edge(['--model', 'yolov2-shapes', '--weights', weights, '--out', enlarged, '--scale', '3', '--backend', 'wasm', IMAGE]);
  t.equal(scaled.status, 0, scaled.stderr);
  t.equal(scaled.stdout, run.stdout.replaceAll('square', 'class 1'), '--scale changes the drawing, not the printed pixels');
  const big = PNG.sync.read(readFileSync(enlarged));
  t.same([big.width, big.height], [288, 288]);
  const bigPixel = (x: number, y: number) => [...big.data.subarray((y * 288 + x) * 4, (y * 288 + x) * 4 + 3)];
  t.same(bigPixel(48, 120), [0, 200, 0], 'box edges at 3x the coordinates');
  t.same(bigPixel(122, 121), pixel(40, 40), 'inside a box: the source pixel, enlarged');

  const strict = edge(['--model', 'yolov2-shapes', '--weights', weights, '--thresh', '0.95', '--backend', 'wasm', IMAGE]);
  t.equal(strict.status, 0, strict.stderr);
  t.equal(strict.stdout, '', 'nothing scores above 0.95');
  const unnamed = edge(['--model', 'yolov2-shapes', '--weights', weights, '--backend', 'wasm', IMAGE]);
  t.match(unnamed.stdout, /^class 1 0\.940 left=0 top=0 right=16 bottom=16$/m, 'class ids without --names');
});

t.test('bad input exits 2 naming the problem', async (t) => {
  const dir = t.testdir({ 'two.names': 'a\nb\n' });
  const weights = join(dir, 'shapes.weights');
  writeFileSync(weights, WEIGHTS);
  const truncated = join(dir, 'short.weights');
  writeFileSync(truncated, WEIGHTS.subarray(0, WEIGHTS.length - 8));
  const cases: [string[], RegExp][] = [
    [['--model', 'yolov2-shapes', '--weights', weights, 'data/shapes/images/valid/missing.png'], /missing\.png: image not found/],
    [['--model', 'yolov2-shapes', '--weights', weights, 'README.md'], /README\.md: not a PNG or JPEG file/],
    [['--model', 'yolov2-shapes', '--weights', weights], /detect needs exactly one image \(PNG or JPEG\), got none/],
    [['--model', 'tiny-classifier', '--weights', weights, IMAGE], /preset:tiny-classifier ends with \[softmax\]: a softmax tail classifies whole images, it is not a detector/],
    [['--model', 'yolov2-front', '--weights', weights, IMAGE], /preset:yolov2-front has no tail, so no detector/],
    [['--model', 'yolov2-shapes', '--weights', truncated, IMAGE], /short\.weights: ends at byte \d+ while reading layer 17 weights/],
    [['--model', 'yolov2-shapes', '--weights', join(dir, 'none.weights'), IMAGE], /none\.weights: weights file not found/],
    [['--model', 'yolov2-shapes', IMAGE], /detect needs --weights FILE/],
    [['--weights', weights, IMAGE], /detect needs --model/],
    [['--model', 'yolov2-shapes', '--weights', weights, '--names', join(dir, 'two.names'), IMAGE], /two\.names names 2 classes, the model's \[region\] has 3/],
    [['--model', 'yolov2-shapes', '--weights', weights, '--thresh', '2', IMAGE], /--thresh must be a number from 0 to 1, got "2"/],
    [['--model', 'yolov2-shapes', '--weights', weights, '--scale', '0', IMAGE], /--scale must be a positive integer, got "0"/],
    [['--model', 'yolov2-shapes', '--weights', weights, '--scale', '17', IMAGE], /--scale must be 1 to 16, got 17/],
  ];
  for (const [args, pattern] of cases) {
    const run = edge(args);
    t.equal(run.status, 2, `${args.join(' ')} exits 2`);
    t.match(run.stderr, pattern, pattern.source);
    t.notMatch(run.stderr, /\n\s+at /, 'no stack trace');
  }
});

t.test('help', async (t) => {
  const run = edge(['--help']);
  t.equal(run.status, 0);
  for (const flag of ['--model', '--weights', '--thresh', '--nms', '--names', '--out', '--scale']) t.match(run.stdout, flag);
  t.match(spawnSync(process.execPath, ['dist/edge.js', '--help'], { encoding: 'utf8' }).stdout, /edge detect/);
});
