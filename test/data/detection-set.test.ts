import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import t from 'tap';
import { DataError } from '../../src/data/data-error.js';
import { labelCandidates } from '../../src/data/detection-labels.js';
import { openDetectionList } from '../../src/data/detection-set.js';

const png = (() => {
  const image = new PNG({ width: 8, height: 6 });
  image.data.fill(120);
  return PNG.sync.write(image);
})();
const jpg = jpeg.encode({ width: 8, height: 8, data: Buffer.alloc(8 * 8 * 4, 90) }, 90).data;

/** Writes files (path relative to root -> content) and returns root. */
function layout(root: string, files: Record<string, string | Buffer>): string {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

t.test('label files: Darknet images -> labels rule first, then the .txt beside the image', async (t) => {
  t.same(labelCandidates('data/images/train/a.png'), ['data/labels/train/a.txt', 'data/images/train/a.txt']);
  t.same(labelCandidates('/voc/VOC2007/JPEGImages/000001.jpg'), ['/voc/VOC2007/labels/000001.txt', '/voc/VOC2007/JPEGImages/000001.txt']);
  t.same(labelCandidates('images/x/images/b.jpeg'), ['images/x/labels/b.txt', 'images/x/images/b.txt'], 'the last images folder');
  t.same(labelCandidates('pics/myimages/c.png'), ['pics/myimages/c.txt'], 'whole folder names only');
});

t.test('a good set: relative and absolute paths, both label places, PNG and JPEG, empty labels', async (t) => {
  const root = t.testdir();
  layout(root, {
    'set/images/a.png': png,
    'set/labels/a.txt': '0 0.5 0.5 0.25 0.5\n2 0.1 0.9 0.2 0.2\n',
    'set/flat/b.jpg': jpg,
    'set/flat/b.txt': '1 0.25 0.75 0.5 0.5\r\n',
    'set/images/empty.png': png,
    'set/labels/empty.txt': '',
  });
  writeFileSync(join(root, 'set/list.txt'), `images/a.png\n${join(root, 'set/flat/b.jpg')}\n\nimages/empty.png\n`);
  const set = openDetectionList(join(root, 'set/list.txt'), { classes: 3 });
  t.same(set.report, { skipped: 0, problems: [] });
  t.same(
    set.samples.map((s) => [s.image, s.labelFile, s.boxes.length, s.width, s.height]),
    [
      [join(root, 'set/images/a.png'), join(root, 'set/labels/a.txt'), 2, 8, 6],
      [join(root, 'set/flat/b.jpg'), join(root, 'set/flat/b.txt'), 1, 8, 8],
      [join(root, 'set/images/empty.png'), join(root, 'set/labels/empty.txt'), 0, 8, 6],
    ],
  );
  t.same(set.samples[0]!.boxes[1], { classId: 2, cx: 0.1, cy: 0.9, w: 0.2, h: 0.2 });
});

t.test('bad samples: each message names the file (and line), skip counts them, fail throws the first', async (t) => {
  const root = t.testdir();
  const bad: [string, Record<string, string | Buffer>, (dir: string) => string][] = [
    ['missing.png', {}, (d) => `${d}/images/missing.png: image not found (listed at ${d}/list.txt:2)`],
    ['corrupt.png', { 'images/corrupt.png': png.subarray(0, 40) }, (d) => `${d}/images/corrupt.png: corrupt PNG: There are some read requests waitng on finished stream`],
    ['corrupt.jpg', { 'images/corrupt.jpg': jpg.subarray(0, jpg.length - 2) }, (d) => `${d}/images/corrupt.jpg: corrupt JPEG: marker was not found`],
    ['nolabel.png', { 'images/nolabel.png': png }, (d) => `${d}/images/nolabel.png: no label file (looked for ${d}/labels/nolabel.txt and ${d}/images/nolabel.txt)`],
    ['four.png', { 'images/four.png': png, 'labels/four.txt': '0 0.5 0.5 0.1 0.1\n\n1 0.5 0.5 0.1\n' }, (d) => `${d}/labels/four.txt:3: expected 5 fields "class cx cy w h", got 4: "1 0.5 0.5 0.1"`],
    ['nan.png', { 'images/nan.png': png, 'labels/nan.txt': '0 0.5 abc 0.1 0.1\n' }, (d) => `${d}/labels/nan.txt:1: cy "abc" is not a number`],
    ['classname.png', { 'images/classname.png': png, 'labels/classname.txt': 'dog 0.5 0.5 0.1 0.1\n' }, (d) => `${d}/labels/classname.txt:1: class "dog" is not a whole number`],
    ['class.png', { 'images/class.png': png, 'labels/class.txt': '0 0.5 0.5 0.1 0.1\n3 0.5 0.5 0.1 0.1\n' }, (d) => `${d}/labels/class.txt:2: class 3 out of range 0..2 (3 classes)`],
    ['outside.png', { 'images/outside.png': png, 'labels/outside.txt': '1 1.2 0.5 0.1 0.1\n' }, (d) => `${d}/labels/outside.txt:1: cx 1.2 outside 0..1`],
    ['negative.png', { 'images/negative.png': png, 'labels/negative.txt': '1 0.5 0.5 -0.1 0.1\n' }, (d) => `${d}/labels/negative.txt:1: w -0.1 outside 0..1`],
    ['flat.png', { 'images/flat.png': png, 'labels/flat.txt': '1 0.5 0.5 0.1 0\n' }, (d) => `${d}/labels/flat.txt:1: box has zero height`],
  ];
  const files: Record<string, string | Buffer> = { 'images/good.png': png, 'labels/good.txt': '0 0.5 0.5 1 1\n' };
  for (const [, extra] of bad) Object.assign(files, extra);
  layout(root, files);
  writeFileSync(join(root, 'list.txt'), ['images/good.png', ...bad.map(([name]) => `images/${name}`)].join('\n'));
  const expected = bad.map(([, , message]) => message(root));

  const set = openDetectionList(join(root, 'list.txt'), { classes: 3, onBadSample: 'skip' });
  t.same(set.report.problems, expected);
  t.equal(set.report.skipped, bad.length);
  t.same(set.samples.map((s) => s.image), [join(root, 'images/good.png')]);

  t.throws(() => openDetectionList(join(root, 'list.txt'), { classes: 3, onBadSample: 'fail' }), new DataError(`${root}/images/missing.png`, undefined, expected[0]!.slice(`${root}/images/missing.png: `.length)));
  t.throws(() => openDetectionList(join(root, 'list.txt'), { classes: 3 }), { name: 'DataError', message: expected[0] }, 'fail is the default');

  // Each case alone, in fail mode, throws its own message.
  bad.forEach(([name], i) => {
    writeFileSync(join(root, 'one.txt'), `images/good.png\nimages/${name}\n`);
    const message = expected[i]!.replace('list.txt:2', 'one.txt:2');
    t.throws(() => openDetectionList(join(root, 'one.txt'), { classes: 3, onBadSample: 'fail' }), { name: 'DataError', message }, name);
  });
});

t.test('a set with no usable sample, or no list, is an error in either mode', async (t) => {
  const root = layout(t.testdir(), { 'list.txt': 'images/none.png\n', 'blank.txt': '\n\n' });
  t.throws(() => openDetectionList(join(root, 'list.txt'), { classes: 1, onBadSample: 'skip' }), {
    message: `${root}/list.txt: no usable samples (1 skipped; first: ${root}/images/none.png: image not found (listed at ${root}/list.txt:1))`,
  });
  t.throws(() => openDetectionList(join(root, 'blank.txt'), { classes: 1, onBadSample: 'skip' }), { message: `${root}/blank.txt: list file names no images` });
  t.throws(() => openDetectionList(join(root, 'nolist.txt'), { classes: 1, onBadSample: 'skip' }), { message: `${root}/nolist.txt: list file not found` });
});
