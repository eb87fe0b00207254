// Decoding, NMS, mAP and accuracy on hand-made cases whose answers are worked out in the comments.
import t from 'tap';
import type { Box } from '../../src/data/detection-labels.js';
import { classificationAccuracy } from '../../src/eval/accuracy.js';
import { allPointAp, meanAveragePrecision } from '../../src/eval/average-precision.js';
import { boxIou } from '../../src/eval/box-iou.js';
import { batchDetections } from '../../src/eval/detections.js';
import { nmsPerClass } from '../../src/eval/nms.js';
import { type Detection, decodeRegion } from '../../src/eval/region-decode.js';
import type { RegionLayer } from '../../src/model/tail-layers.js';

const region = (anchors: [number, number][], classes: number): RegionLayer => ({
  kind: 'region', classes, anchors: anchors.map(([w, h]) => ({ w, h })), thresh: 0.5, biasMatch: true, rescore: true,
  objectScale: 5, noobjectScale: 1, classScale: 1, coordScale: 1, logisticGradient: true,
});
const det = (classId: number, score: number, cx: number, cy: number, w: number, h: number): Detection => ({ classId, score, cx, cy, w, h });
const box = (classId: number, cx: number, cy: number, w: number, h: number): Box => ({ classId, cx, cy, w, h });
const close = (a: number, b: number, eps = 1e-6) => Math.abs(a - b) <= eps;

t.test('IoU of centre boxes', async (t) => {
  t.ok(close(boxIou({ cx: 0.5, cy: 0.5, w: 0.2, h: 0.4 }, { cx: 0.5, cy: 0.5, w: 0.2, h: 0.4 }), 1));
  t.equal(boxIou({ cx: 0.1, cy: 0.1, w: 0.1, h: 0.1 }, { cx: 0.9, cy: 0.9, w: 0.1, h: 0.1 }), 0);
  // Two unit squares shifted by half: intersection 1/2, union 3/2.
  t.ok(close(boxIou({ cx: 0, cy: 0, w: 1, h: 1 }, { cx: 0.5, cy: 0, w: 1, h: 1 }), 1 / 3));
  t.equal(boxIou({ cx: 0, cy: 0, w: 0, h: 0 }, { cx: 0, cy: 0, w: 0, h: 0 }), 0, 'empty boxes overlap nothing');
});

t.test('decoding follows get_region_boxes', async (t) => {
  // 2x2 grid, one anchor 1 x 2 cells, 2 classes: 7 values per cell.
  const layer = region([[1, 2]], 2);
  const raw = new Float32Array(4 * 7);
  for (let cell = 0; cell < 4; cell++) raw[cell * 7 + 4] = -20; // no object anywhere...
  // ...but in cell (row 0, col 1): x = y = 0 (offset 0.5), w = 0, h = ln 0.5, objectness 0 (0.5),
  // class logits ln 3 and 0 (p = 0.75, 0.25): scores 0.375 and 0.125.
  raw.set([0, 0, 0, Math.log(0.5), 0, Math.log(3), 0], 1 * 7);
  const grid = { height: 2, width: 2, channels: 7 };
  const found = decodeRegion(raw, grid, layer, 0.1);
  t.equal(found.length, 2, 'one box, reported for both classes above 0.1');
  const first = found[0]!;
  t.equal(first.classId, 0);
  t.ok(close(first.score, 0.375), `score ${first.score}`);
  t.ok(close(first.cx, 0.75) && close(first.cy, 0.25) && close(first.w, 0.5) && close(first.h, 0.5), `box ${JSON.stringify(first)}`);
  t.ok(close(found[1]!.score, 0.125) && found[1]!.classId === 1);
  t.same(decodeRegion(raw, grid, layer, 0.2).map((d) => d.classId), [0], 'only scores above the threshold');
  t.throws(() => decodeRegion(raw.subarray(1), grid, layer, 0.1), /has 28 values, got 27/);

  const two = new Float32Array(2 * 28);
  for (let cell = 0; cell < 4; cell++) two[cell * 7 + 4] = -20; // image 0: no object
  two.set(raw, 28);
  const perImage = batchDetections({ values: two, shape: grid }, 2, layer, { thresh: 0.2, nms: 0.45 });
  t.same(perImage.map((d) => d.length), [0, 1], 'images are decoded apart');
});

t.test('NMS per class, by falling score', async (t) => {
  const detections = [
    det(0, 0.6, 0.50, 0.5, 0.2, 0.2),
    det(0, 0.9, 0.52, 0.5, 0.2, 0.2), // IoU with the first: 0.18/0.22 = 0.82
    det(0, 0.7, 0.70, 0.5, 0.2, 0.2), // IoU with the second: 0.02/0.38 = 0.05, kept
    det(1, 0.5, 0.51, 0.5, 0.2, 0.2), // another class: not suppressed by class 0
  ];
  t.same(nmsPerClass(detections).map((d) => d.score), [0.9, 0.7, 0.5]);
  t.same(nmsPerClass(detections, 0.01).map((d) => d.score), [0.9, 0.5], 'at 0.01 the third (IoU 0.05) goes too; class 1 stays');
  t.same(nmsPerClass(detections, 0.9).map((d) => d.score), [0.9, 0.7, 0.6, 0.5], 'nothing overlaps more than 0.9');
});

t.test('mAP: perfect, empty and a mixed case by hand', async (t) => {
  const truths = [[box(0, 0.2, 0.2, 0.2, 0.2), box(0, 0.7, 0.7, 0.2, 0.2)], [box(0, 0.5, 0.5, 0.4, 0.4), box(1, 0.3, 0.6, 0.2, 0.3)]];
  const perfect = truths.map((boxes) => boxes.map((b, k) => ({ ...b, score: 0.9 - 0.1 * k })));
  t.same(meanAveragePrecision(perfect, truths, 3), { map: 1, perClass: [1, 1, null] }, 'class 2 has no truth: left out');
  t.same(meanAveragePrecision([[], []], truths, 3), { map: 0, perClass: [0, 0, null] });

  // Class 0 (3 truths: A, B in image 0, C in image 1), by falling score:
  //   0.9 on A (TP: recall 1/3, precision 1), 0.8 on A again (FP: 1/3, 1/2),
  //   0.7 nowhere (FP: 1/3, 1/3), 0.6 on C (TP: 2/3, 1/2); B is never found.
  //   Envelope: 1 up to recall 1/3, then 1/2 up to 2/3: AP = 1/3 + 1/3 * 1/2 = 1/2.
  // Class 1 (1 truth D): 0.5 at IoU 0.4 with D (FP), then 0.3 at IoU 0.6 (TP: recall 1, precision 1/2): AP = 1/2.
  // Class 2: a detection but no truth: left out. mAP = (1/2 + 1/2) / 2.
  const mixed = [
    [det(0, 0.9, 0.2, 0.2, 0.2, 0.2), det(0, 0.8, 0.21, 0.2, 0.2, 0.2), det(2, 0.95, 0.5, 0.5, 0.1, 0.1)],
    [det(0, 0.7, 0.9, 0.1, 0.1, 0.1), det(0, 0.6, 0.5, 0.5, 0.4, 0.4),
      det(1, 0.5, 0.3, 0.6, 0.2 * Math.sqrt(0.4), 0.3 * Math.sqrt(0.4)), det(1, 0.3, 0.3, 0.6, 0.2 * Math.sqrt(0.6), 0.3 * Math.sqrt(0.6))],
  ];
  t.ok(close(boxIou(mixed[1]![2]!, truths[1]![1]!), 0.4) && close(boxIou(mixed[1]![3]!, truths[1]![1]!), 0.6), 'the class 1 overlaps are as stated');
  const result = meanAveragePrecision(mixed, truths, 3);
  t.ok(close(result.perClass[0]!, 0.5), `class 0 AP ${result.perClass[0]}`);
  t.ok(close(result.perClass[1]!, 0.5), `class 1 AP ${result.perClass[1]}`);
  t.equal(result.perClass[2], null);
  t.ok(close(result.map, 0.5), `mAP ${result.map}`);
  t.ok(close(meanAveragePrecision(mixed, truths, 3, 0.3).perClass[1]!, 1), 'at IoU 0.3 the first class 1 detection is a hit');

  // All-point interpolation, not 11-point: recall 0.5 at precision 1 gives 0.5 (11-point: 6/11).
  t.ok(close(allPointAp([0.5], [1]), 0.5));
  t.throws(() => meanAveragePrecision([[]], [[]], 2), /no ground-truth boxes in 1 images/);
  t.throws(() => meanAveragePrecision([[]], [[], []], 2), /detections for 1 images but ground truth for 2/);
});

t.test('classification accuracy', async (t) => {
  const logits = Float32Array.from([2, 1, 0, /**/ 0, 0, 3, /**/ 1, 1, 0, /**/ 0, 5, 1]);
  // argmax: 0, 2, 0 (tie goes to the lower index), 1.
  t.equal(classificationAccuracy(logits, 3, Int32Array.from([0, 2, 1, 1])), 0.75);
  t.throws(() => classificationAccuracy(logits, 3, Int32Array.from([0])), /12 logits for 1 images of 3 classes/);
});
