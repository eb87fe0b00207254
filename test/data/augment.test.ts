import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import t from 'tap';
import { drawTransform, transformBoxes } from '../../src/data/augment.js';
import type { Box } from '../../src/data/detection-labels.js';
import { openDetectionList } from '../../src/data/detection-set.js';
import { readImage } from '../../src/data/image.js';
import { loadDetectionBatch } from '../../src/data/load.js';
import { resizeBilinear } from '../../src/data/resize.js';
import { seededRandom } from '../../src/model/weights.js';

// 100 x 80 grey image with a red rectangle inside and a blue one at the right edge (which a crop
// may cut away entirely).
const W = 100;
const H = 80;
const RED = { x0: 30, x1: 55, y0: 20, y1: 50 };
const BLUE = { x0: 85, x1: 100, y0: 5, y1: 15 };

function writeSet(root: string): string {
  const png = new PNG({ width: W, height: H });
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const inside = (r: typeof RED) => x >= r.x0 && x < r.x1 && y >= r.y0 && y < r.y1;
      png.data.set(inside(RED) ? [255, 0, 0, 255] : inside(BLUE) ? [0, 0, 255, 255] : [128, 128, 128, 255], (y * W + x) * 4);
    }
  }
  const label = (c: number, r: typeof RED) => `${c} ${(r.x0 + r.x1) / 2 / W} ${(r.y0 + r.y1) / 2 / H} ${(r.x1 - r.x0) / W} ${(r.y1 - r.y0) / H}\n`;
  mkdirSync(join(root, 'images'));
  mkdirSync(join(root, 'labels'));
  writeFileSync(join(root, 'images/a.png'), PNG.sync.write(png));
  writeFileSync(join(root, 'labels/a.txt'), label(0, RED) + label(1, BLUE));
  writeFileSync(join(root, 'list.txt'), 'images/a.png\n');
  return join(root, 'list.txt');
}

/** Pixel bounds [x0, x1) x [y0, y1) of the pixels where `channel` leads the others by over half. */
function colourBounds(images: Float32Array, h: number, w: number, channel: number) {
  let b = { x0: w, x1: 0, y0: h, y1: 0 };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = images.subarray((y * w + x) * 3, (y * w + x) * 3 + 3);
      const lead = p[channel]! - Math.max(...[0, 1, 2].filter((c) => c !== channel).map((c) => p[c]!));
      if (lead > 0.5) b = { x0: Math.min(b.x0, x), x1: Math.max(b.x1, x + 1), y0: Math.min(b.y0, y), y1: Math.max(b.y1, y + 1) };
    }
  }
  return b.x1 > b.x0 ? b : undefined;
}

const pixelBox = (b: Box, h: number, w: number) => ({ x0: (b.cx - b.w / 2) * w, x1: (b.cx + b.w / 2) * w, y0: (b.cy - b.h / 2) * h, y1: (b.cy + b.h / 2) * h });

t.test('without augmentation a batch is the resized image and its labels', async (t) => {
  const set = openDetectionList(writeSet(t.testdir()), { classes: 2 });
  const batch = loadDetectionBatch(set, [0, 0], { height: 40, width: 50 });
  const resized = resizeBilinear(readImage(set.samples[0]!.image), 40, 50).data;
  t.same(batch.images.subarray(0, resized.length), resized);
  t.same(batch.images.subarray(resized.length), resized);
  for (const [got, want] of batch.boxes[0]!.map((b, i) => [b, set.samples[0]!.boxes[i]!] as const)) {
    t.equal(got.classId, want.classId);
    for (const k of ['cx', 'cy', 'w', 'h'] as const) t.ok(Math.abs(got[k] - want[k]) < 1e-12, `${k} ${got[k]} vs ${want[k]}`);
  }
});

t.test('crop and flip move the boxes with the pixels', async (t) => {
  const set = openDetectionList(writeSet(t.testdir()), { classes: 2 });
  const [h, w] = [80, 100];
  let flips = 0;
  let blueDropped = 0;
  for (let epoch = 0; epoch < 24; epoch++) {
    const augment = { seed: 11, jitter: 0.3, flip: true };
    const batch = loadDetectionBatch(set, [0], { height: h, width: w, augment, epoch });
    const boxes = batch.boxes[0]!;
    const red = boxes.find((b) => b.classId === 0)!;
    const seenRed = colourBounds(batch.images, h, w, 0)!;
    const want = pixelBox(red, h, w);
    for (const k of ['x0', 'x1', 'y0', 'y1'] as const) t.ok(Math.abs(seenRed[k] - want[k]) <= 1, `epoch ${epoch} red ${k}: pixels ${seenRed[k]}, box ${want[k].toFixed(2)}`);
    if (red.cx > 0.5) flips++;
    const blue = boxes.find((b) => b.classId === 1);
    const seenBlue = colourBounds(batch.images, h, w, 2);
    if (blue === undefined) {
      blueDropped++;
      t.equal(seenBlue, undefined, `epoch ${epoch}: blue box dropped and no blue pixels left`);
    } else {
      const wantBlue = pixelBox(blue, h, w);
      for (const k of ['x0', 'x1', 'y0', 'y1'] as const) t.ok(Math.abs(seenBlue![k] - wantBlue[k]) <= 1, `epoch ${epoch} blue ${k}: pixels ${seenBlue![k]}, box ${wantBlue[k].toFixed(2)}`);
    }
    t.same(loadDetectionBatch(set, [0], { height: h, width: w, augment, epoch }), batch, 'same seed and epoch, same batch');
  }
  t.ok(flips > 3 && flips < 21, `flipped in ${flips} of 24 epochs`);
  t.ok(blueDropped > 0 && blueDropped < 24, `blue box cropped away in ${blueDropped} of 24 epochs`);
});

t.test('transforms stay inside the image and boxes are clipped to the crop', async (t) => {
  const random = seededRandom(3);
  for (let i = 0; i < 200; i++) {
    const { crop } = drawTransform({ height: 7, width: 5 }, { jitter: 0.49, flip: false }, random);
    t.ok(crop.x >= 0 && crop.y >= 0 && crop.width >= 1 && crop.height >= 1 && crop.x + crop.width <= 5 && crop.y + crop.height <= 7, JSON.stringify(crop));
  }
  const crop = { x: 10, y: 0, width: 80, height: 80 };
  const [box] = transformBoxes([{ classId: 4, cx: 0.1, cy: 0.5, w: 0.2, h: 1 }], { height: 80, width: 100 }, { crop, flip: true });
  // The box spanned x 0..20; the crop starts at 10, so 10..20 remains: 0..10 of 80, then mirrored.
  t.same(box, { classId: 4, cx: 1 - 5 / 80, cy: 0.5, w: 10 / 80, h: 1 });
  t.throws(() => drawTransform({ height: 7, width: 5 }, { jitter: 0.5, flip: false }, random), { message: 'jitter must be in [0, 0.5), got 0.5' });
});
