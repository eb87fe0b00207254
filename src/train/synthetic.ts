// `--data synthetic`: seeded random images and, for a front-only model, a seeded random target for
// the front's output, or for a model with a tail a seeded class label per image. Step k's images and
// labels depend only on (seed, k), so a resumed run sees the same data.
import { type Network, mapShapes } from '../model/layers.js';
import { fillUniform, seededRandom } from '../model/weights.js';
import type { Box } from '../data/detection-labels.js';

const mix = (seed: number, step: number, stream: number) => (Math.imul(seed, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b) ^ Math.imul(stream, 0xc2b2ae35)) >>> 0;

export function syntheticImages(net: Network, batch: number, seed: number, step: number): Float32Array {
  const m = net.input;
  return fillUniform(new Float32Array(batch * m.height * m.width * m.channels), seededRandom(mix(seed, step, 1)), 0, 1);
}

/** One fixed target per seed (the same every step), so the squared error can fall as training runs. */
export function syntheticTarget(net: Network, batch: number, seed: number): Float32Array {
  const maps = mapShapes(net);
  const m = maps[maps.length - 1]!;
  return fillUniform(new Float32Array(batch * m.height * m.width * m.channels), seededRandom(mix(seed, 0, 2)), -0.5, 0.5);
}

/** One class per image, uniform over the softmax's `classes`. */
export function syntheticLabels(batch: number, classes: number, seed: number, step: number): Int32Array {
  const random = seededRandom(mix(seed, step, 3));
  return Int32Array.from({ length: batch }, () => Math.min(classes - 1, Math.floor(random() * classes)));
}

/** One to three boxes per image, of seeded classes, positions and sizes inside the image. */
export function syntheticBoxes(batch: number, classes: number, seed: number, step: number): Box[][] {
  const random = seededRandom(mix(seed, step, 4));
  return Array.from({ length: batch }, () => Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
    const w = 0.1 + 0.4 * random();
    const h = 0.1 + 0.4 * random();
    return { classId: Math.min(classes - 1, Math.floor(random() * classes)), cx: w / 2 + (1 - w) * random(), cy: h / 2 + (1 - h) * random(), w, h };
  }));
}
