import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import t from 'tap';
import { classesInPath, openClassificationFolder, openClassificationList } from '../../src/data/classification-set.js';
import { readNames } from '../../src/data/list-file.js';

const png = (() => {
  const image = new PNG({ width: 4, height: 3 });
  image.data.fill(60);
  return PNG.sync.write(image);
})();

function layout(root: string, files: Record<string, string | Buffer>): string {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

t.test('a class name matches only as a whole token of the path', async (t) => {
  const names = ['cat', 'bobcat', 'sea lion'];
  t.same(classesInPath('train/123_cat.png', names), [0]);
  t.same(classesInPath('train/bobcat/1.png', names), [1]);
  t.same(classesInPath('train/concatenate.png', names), []);
  t.same(classesInPath('sea lion/cat-1.jpg', names), [0, 2]);
});

t.test('names files: order gives ids; duplicates are refused with their line', async (t) => {
  const root = layout(t.testdir(), { 'a.names': 'cat\n\ndog\n', 'b.names': 'cat\ndog\ncat\n' });
  t.same(readNames(join(root, 'a.names')), ['cat', 'dog']);
  t.throws(() => readNames(join(root, 'b.names')), { message: `${join(root, 'b.names')}:3: class name "cat" appears twice` });
});

t.test('list + names: labels from the path as written; ambiguous and unlabelled paths are bad samples', async (t) => {
  const root = layout(t.testdir(), {
    'imgs/1_cat.png': png,
    'imgs/2_dog.png': png,
    'imgs/3_cat_dog.png': png,
    'imgs/4.png': png,
    'list.txt': 'imgs/1_cat.png\nimgs/2_dog.png\nimgs/3_cat_dog.png\nimgs/4.png\nimgs/5_dog.png\n',
  });
  const list = join(root, 'list.txt');
  const set = openClassificationList(list, ['cat', 'dog'], { onBadSample: 'skip' });
  t.same(set.samples.map((s) => [s.image, s.classId]), [[join(root, 'imgs/1_cat.png'), 0], [join(root, 'imgs/2_dog.png'), 1]]);
  t.same(set.report.problems, [
    `${list}:3: path "imgs/3_cat_dog.png" contains 2 class names (cat, dog); it needs exactly one`,
    `${list}:4: path "imgs/4.png" contains no class name; it needs exactly one`,
    `${join(root, 'imgs/5_dog.png')}: image not found (listed at ${list}:5)`,
  ]);
  t.throws(() => openClassificationList(list, ['cat', 'dog']), { name: 'DataError', message: set.report.problems[0] });
});

t.test('folder per class: sorted class folders, image files only', async (t) => {
  const root = layout(t.testdir(), {
    'zebra/b.png': png,
    'zebra/a.PNG': png,
    'apple/x.png': png,
    'apple/notes.md': 'not an image',
    'apple/broken.jpg': 'not a jpeg',
  });
  const set = openClassificationFolder(root, { onBadSample: 'skip' });
  t.same(set.names, ['apple', 'zebra']);
  t.same(set.samples.map((s) => [s.image, s.classId]), [[join(root, 'apple/x.png'), 0], [join(root, 'zebra/a.PNG'), 1], [join(root, 'zebra/b.png'), 1]]);
  t.same(set.report.problems, [`${join(root, 'apple/broken.jpg')}: not a PNG or JPEG file (10 bytes, starting 6e 6f 74 20)`]);
  t.throws(() => openClassificationFolder(join(root, 'nowhere')), { message: `${join(root, 'nowhere')}: data set folder not found` });
});
