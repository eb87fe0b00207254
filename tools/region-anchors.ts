// Anchors for a [region] layer from a detection set's boxes: k-means over box shapes (width,
// height) with the distance 1 - IoU of the two shapes centred on each other, as the YOLOv2 paper
// chooses its priors. Prints the `anchors=` line in grid cells and the mean best IoU of a box with
// its nearest anchor. Deterministic: seeded k-means++ start, iterated until no box changes cluster.
//   node dist/region-anchors.js --list data/shapes/train.txt --classes 3 --num 5 --grid 6x6
import { openDetectionList } from '../src/data/detection-set.js';
import { boxIou } from '../src/eval/box-iou.js';
import { seededRandom } from '../src/model/weights.js';
import { toolArgs } from './lib/tool-args.js';

interface Shape {
  readonly w: number;
  readonly h: number;
}

const shapeIou = (a: Shape, b: Shape) => boxIou({ cx: 0, cy: 0, ...a }, { cx: 0, cy: 0, ...b });
const nearest = (s: Shape, centres: readonly Shape[]) => centres.reduce((best, c, k) => (shapeIou(s, c) > shapeIou(s, centres[best]!) ? k : best), 0);

function kmeansPlusPlus(shapes: readonly Shape[], k: number, random: () => number): Shape[] {
  const centres = [shapes[Math.floor(random() * shapes.length)]!];
  while (centres.length < k) {
    const distances = shapes.map((s) => 1 - Math.max(...centres.map((c) => shapeIou(s, c))));
    let pick = random() * distances.reduce((a, b) => a + b, 0);
    const index = distances.findIndex((d) => (pick -= d) <= 0);
    centres.push(shapes[index < 0 ? shapes.length - 1 : index]!);
  }
  return centres;
}

function kmeans(shapes: readonly Shape[], k: number, seed: number): { centres: Shape[]; meanIou: number } {
  let centres = kmeansPlusPlus(shapes, k, seededRandom(seed));
  let assignment: number[] = [];
  for (let iteration = 0; iteration < 1000; iteration++) {
    const next = shapes.map((s) => nearest(s, centres));
    if (next.every((c, i) => c === assignment[i])) break;
    assignment = next;
    centres = centres.map((old, c) => {
      const members = shapes.filter((_, i) => assignment[i] === c);
      if (members.length === 0) return old;
      return { w: members.reduce((s, m) => s + m.w, 0) / members.length, h: members.reduce((s, m) => s + m.h, 0) / members.length };
    });
  }
  const meanIou = shapes.reduce((s, shape) => s + shapeIou(shape, centres[nearest(shape, centres)]!), 0) / shapes.length;
  return { centres: centres.sort((a, b) => a.w * a.h - b.w * b.h), meanIou };
}

try {
  const values = toolArgs('region-anchors', "Anchors for a [region] layer by k-means (distance 1 - IoU) over a detection set's box shapes.", { list: { type: 'string' }, classes: { type: 'string' }, num: { type: 'string' }, grid: { type: 'string' }, seed: { type: 'string' } });
  if (!values.list || !values.classes) throw new Error('needs --list FILE and --classes N');
  const grid = /^(\d+)x(\d+)$/.exec(values.grid ?? '13x13');
  if (!grid) throw new Error(`--grid must look like HxW, got "${values.grid}"`);
  const [rows, cols] = [Number(grid[1]), Number(grid[2])];
  const set = openDetectionList(values.list, { classes: Number(values.classes) });
  const shapes = set.samples.flatMap((s) => s.boxes.map((b) => ({ w: b.w, h: b.h })));
  const { centres, meanIou } = kmeans(shapes, Number(values.num ?? 5), Number(values.seed ?? 1));
  console.log(`${shapes.length} boxes from ${set.samples.length} images; mean IoU of a box with its nearest anchor ${meanIou.toFixed(3)}`);
  console.log(`anchors=${centres.map((c) => `${(c.w * cols).toFixed(2)},${(c.h * rows).toFixed(2)}`).join(', ')}`);
} catch (error) {
  console.error(`region-anchors: ${(error as Error).message}`);
  process.exit(2);
}
