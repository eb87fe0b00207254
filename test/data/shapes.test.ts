import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { readLabels } from '../../src/data/detection-labels.js';
import { openDetectionList } from '../../src/data/detection-set.js';
import { readImage } from '../../src/data/image.js';
import { readNames } from '../../src/data/list-file.js';
import { DEFAULT_SHAPES, shapesImage, writeShapesSet } from '../../src/data/shapes.js';

const committed = fileURLToPath(new URL('../../data/shapes', import.meta.url));

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => statSync(join(dir, file)).isFile())
    .sort();
}

t.test('regenerating with the default seed reproduces the committed data/shapes', async (t) => {
  const fresh = t.testdir();
  const written = writeShapesSet(fresh, DEFAULT_SHAPES);
  t.same(filesUnder(committed), [...written].sort(), 'the same files');
  let pngs = 0;
  for (const file of written) {
    if (file.endsWith('.png')) {
      // Pixels, not bytes: another zlib could compress the same pixels differently.
      if (!Buffer.from(readImage(join(fresh, file)).data.buffer).equals(Buffer.from(readImage(join(committed, file)).data.buffer))) t.fail(`${file}: pixels differ`);
      pngs++;
    } else if (!readFileSync(join(fresh, file)).equals(readFileSync(join(committed, file)))) {
      t.fail(`${file}: bytes differ`);
    }
  }
  t.equal(pngs, DEFAULT_SHAPES.train + DEFAULT_SHAPES.valid);
});

t.test('the committed set opens cleanly: 3 classes, 200 train and 50 valid images of 96x96', async (t) => {
  const names = readNames(join(committed, 'shapes.names'));
  t.same(names, ['circle', 'square', 'triangle']);
  for (const [list, count] of [['train.txt', 200], ['valid.txt', 50]] as const) {
    const set = openDetectionList(join(committed, list), { classes: names.length, onBadSample: 'fail' });
    t.equal(set.samples.length, count);
    t.ok(set.samples.every((s) => s.width === 96 && s.height === 96 && s.boxes.length >= 1));
  }
});

t.test('every label box tightly bounds the pixels of its shape, and the shape looks like its class', async (t) => {
  // Fraction of its box a shape fills: a circle about pi/4, a square all, a triangle about 0.4-0.6.
  const fill = [
    [0.7, 0.86],
    [0.99, 1],
    [0.3, 0.7],
  ] as const;
  const perClass = [0, 0, 0];
  let checked = 0;
  for (const split of ['train', 'valid'] as const) {
    for (let i = 0; i < DEFAULT_SHAPES[split]; i++) {
      const name = `${split}/${String(i).padStart(6, '0')}`;
      const image = readImage(join(committed, `images/${name}.png`));
      const labels = readLabels(join(committed, `labels/${name}.txt`), 3);
      const drawn = shapesImage(DEFAULT_SHAPES, split, i).shapes;
      t.equal(labels.length, drawn.length, `${name}: a label per shape`);
      labels.forEach((box, k) => {
        // Which pixels have this shape's colour (no background pixel can have it).
        const color = drawn[k]!.color;
        let [x0, y0, x1, y1, count] = [96, 96, 0, 0, 0];
        for (let y = 0; y < 96; y++) {
          for (let x = 0; x < 96; x++) {
            if (![0, 1, 2].every((c) => Math.round(image.data[(y * 96 + x) * 3 + c]! * 255) === color[c])) continue;
            [x0, y0, x1, y1, count] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x + 1), Math.max(y1, y + 1), count + 1];
          }
        }
        const edges = [(box.cx - box.w / 2) * 96, (box.cy - box.h / 2) * 96, (box.cx + box.w / 2) * 96, (box.cy + box.h / 2) * 96];
        if (![x0, y0, x1, y1].every((v, j) => Math.abs(v - edges[j]!) < 1e-3)) t.fail(`${name} line ${k + 1}: pixels span ${[x0, y0, x1, y1]}, box ${edges.map((e) => e.toFixed(3))}`);
        const ratio = count / ((x1 - x0) * (y1 - y0));
        const [low, high] = fill[box.classId]!;
        if (!(ratio >= low && ratio <= high)) t.fail(`${name} line ${k + 1}: class ${box.classId} fills ${ratio.toFixed(2)} of its box`);
        perClass[box.classId]!++;
        checked++;
      });
    }
  }
  t.ok(perClass.every((n) => n > 60), `shapes per class ${perClass}`);
  t.pass(`${checked} boxes checked`);
});
