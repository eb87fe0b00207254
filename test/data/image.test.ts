import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import t from 'tap';
import { DataError } from '../../src/data/data-error.js';
import { type RgbImage, decodeImage, readImage } from '../../src/data/image.js';
import { resizeBilinear } from '../../src/data/resize.js';
import { seededRandom } from '../../src/model/weights.js';

function pngBytes(width: number, height: number, rgba: number[], colorType: 0 | 2 | 6 = 6): Buffer {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba);
  return PNG.sync.write(png, { colorType });
}

function randomImage(height: number, width: number, seed: number): RgbImage {
  const random = seededRandom(seed);
  return { height, width, data: Float32Array.from({ length: height * width * 3 }, random) };
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

t.test('PNG decodes to RGB floats in [0, 1], HWC, alpha dropped', async (t) => {
  // 2 x 3 image: every pixel distinct, alpha varied (it must not leak into the colour).
  const rgba = [0, 0, 0, 255, 255, 0, 0, 10, 0, 255, 0, 0, 0, 0, 255, 255, 51, 102, 153, 128, 255, 255, 255, 255];
  const image = decodeImage(pngBytes(3, 2, rgba), 'x.png');
  t.equal(image.width, 3);
  t.equal(image.height, 2);
  t.same(Array.from(image.data), [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0.2, 0.4, 0.6, 1, 1, 1].map((v) => Math.fround(v)));
});

t.test('a grey PNG expands to three equal channels', async (t) => {
  const rgba = [0, 0, 0, 255, 128, 128, 128, 255];
  const image = decodeImage(pngBytes(2, 1, rgba, 0), 'grey.png');
  t.same(Array.from(image.data), [0, 0, 0, 128 / 255, 128 / 255, 128 / 255].map((v) => Math.fround(v)));
});

t.test('a 16-bit PNG is scaled to 8 bits', async (t) => {
  const png = new PNG({ width: 2, height: 1, bitDepth: 16, colorType: 2, inputColorType: 6 });
  png.data = Buffer.from(new Uint16Array([0, 0, 0, 65535, 65535, 32768, 65535, 65535]).buffer);
  const image = decodeImage(PNG.sync.write(png, { bitDepth: 16, colorType: 2, inputColorType: 6 }), 'deep.png');
  t.same(Array.from(image.data), [0, 0, 0, 1, 128 / 255, 1].map((v) => Math.fround(v)));
});

t.test('JPEG decodes close to what was encoded', async (t) => {
  // A smooth image (JPEG is lossy; smooth content survives quality 95 almost unchanged).
  const width = 40;
  const height = 24;
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) rgba.set([Math.round((x / width) * 255), Math.round((y / height) * 255), 100, 255], (y * width + x) * 4);
  }
  const bytes = jpeg.encode({ width, height, data: rgba }, 95).data;
  const image = decodeImage(bytes, 'x.jpg');
  t.equal(image.width, width);
  t.equal(image.height, height);
  const expected = Array.from({ length: width * height * 3 }, (_, i) => rgba[Math.floor(i / 3) * 4 + (i % 3)]! / 255);
  t.ok(maxDiff(image.data, expected) < 0.04, `max error ${maxDiff(image.data, expected)}`);
});

t.test('format comes from the bytes, and bad files name themselves', async (t) => {
  const dir = t.testdir({ 'text.png': 'hello', 'empty.jpg': '' });
  const png = pngBytes(4, 4, Array(64).fill(200));
  const jpg = jpeg.encode({ width: 16, height: 16, data: Buffer.alloc(16 * 16 * 4, 90) }, 90).data;
  writeFileSync(join(dir, 'png-named.jpg'), png);
  writeFileSync(join(dir, 'short.png'), png.subarray(0, png.length - 20));
  writeFileSync(join(dir, 'short.jpg'), jpg.subarray(0, jpg.length - 2));
  t.equal(readImage(join(dir, 'png-named.jpg')).width, 4);
  t.throws(() => readImage(join(dir, 'text.png')), { message: `${join(dir, 'text.png')}: not a PNG or JPEG file (5 bytes, starting 68 65 6c 6c)` });
  t.throws(() => readImage(join(dir, 'empty.jpg')), { message: `${join(dir, 'empty.jpg')}: not a PNG or JPEG file (0 bytes, starting with nothing)` });
  t.throws(() => readImage(join(dir, 'short.png')), { message: new RegExp(`^${join(dir, 'short.png')}: corrupt PNG: `) });
  t.throws(() => readImage(join(dir, 'short.jpg')), { message: `${join(dir, 'short.jpg')}: corrupt JPEG: marker was not found` });
  t.throws(() => readImage(join(dir, 'gone.png')), { message: `${join(dir, 'gone.png')}: image not found` });
  t.throws(() => readImage(dir), { message: `${dir}: image is a directory` });
  t.throws(() => readImage(join(dir, 'short.png')), DataError);
});

t.test('bilinear resize matches tf.image.resizeBilinear with half-pixel centres', async (t) => {
  await tf.setBackend('cpu');
  const src = randomImage(7, 10, 1);
  for (const [h, w] of [[7, 10], [3, 4], [14, 25], [5, 17], [1, 1]] as const) {
    const ours = resizeBilinear(src, h, w);
    const theirs = tf.tidy(() => tf.image.resizeBilinear(tf.tensor3d(src.data, [7, 10, 3]), [h, w], false, true).dataSync());
    t.ok(maxDiff(ours.data, theirs) < 1e-6, `${h}x${w}: max difference ${maxDiff(ours.data, theirs)}`);
  }
  t.same(resizeBilinear(src, 7, 10).data, src.data, 'same size is the identity');
});

t.test('resize of a rectangle equals resize of the cropped image; flip mirrors columns', async (t) => {
  await tf.setBackend('cpu');
  const src = randomImage(9, 12, 2);
  const rect = { x: 3, y: 2, width: 6, height: 5 };
  const ours = resizeBilinear(src, 8, 11, rect);
  const theirs = tf.tidy(() => {
    const crop = tf.slice(tf.tensor3d(src.data, [9, 12, 3]), [rect.y, rect.x, 0], [rect.height, rect.width, 3]);
    return tf.image.resizeBilinear(crop, [8, 11], false, true).dataSync();
  });
  t.ok(maxDiff(ours.data, theirs) < 1e-6, `max difference ${maxDiff(ours.data, theirs)}`);
  const flipped = resizeBilinear(src, 8, 11, rect, true);
  const mirrored = tf.tidy(() => tf.reverse(tf.tensor3d(ours.data, [8, 11, 3]), 1).dataSync());
  t.same(Array.from(flipped.data), Array.from(mirrored));
  t.throws(() => resizeBilinear(src, 4, 4, { x: 8, y: 0, width: 5, height: 9 }), RangeError);
});
