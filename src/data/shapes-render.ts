// One image of the synthetic "shapes" detection set: coloured circles, squares and triangles on a
// textured background, drawn without anti-aliasing so every shape owns an exact set of pixels and
// its box is the tight bound of those pixels. Backgrounds keep every channel inside 40..215 and
// shapes use fully saturated colours (one channel 255, one 0), so no background pixel ever has a
// shape's colour; shapes in one image have distinct colours and boxes that do not touch.
import { seededRandom } from '../model/weights.js';
import type { Box } from './detection-labels.js';

export const SHAPE_NAMES = ['circle', 'square', 'triangle'] as const;

export interface DrawnShape {
  readonly classId: number;
  readonly color: readonly [number, number, number];
  /** Tight pixel bounds: columns x0..x1-1 and rows y0..y1-1 hold the shape's pixels. */
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}

export interface ShapesImage {
  readonly size: number;
  /** size x size x 3 bytes, RGB. */
  readonly rgb: Uint8Array;
  readonly shapes: readonly DrawnShape[];
}

const BACKGROUND_LOW = 40;
const BACKGROUND_HIGH = 215;
const NOISE = 4;
const MAX_SHAPES = 3;
const PLACEMENT_TRIES = 40;

/** Renders the image fixed by `seed` at size x size pixels. */
export function renderShapesImage(seed: number, size: number): ShapesImage {
  const random = seededRandom(seed);
  const rgb = drawBackground(size, random);
  const shapes: DrawnShape[] = [];
  const count = 1 + Math.floor(random() * MAX_SHAPES);
  for (let i = 0; i < count; i++) {
    const classId = Math.floor(random() * SHAPE_NAMES.length);
    const color = distinctColor(shapes, random);
    for (let attempt = 0; attempt < PLACEMENT_TRIES; attempt++) {
      const inside = shapeTest(classId, size, random);
      const bounds = pixelBounds(inside, size);
      if (bounds === undefined || shapes.some((s) => touches(s, bounds))) continue;
      paint(rgb, size, inside, bounds, color);
      shapes.push({ classId, color, ...bounds });
      break;
    }
  }
  return { size, rgb, shapes };
}

/** The Darknet label box of a drawn shape, normalised to the image. */
export function shapeBox(shape: DrawnShape, size: number): Box {
  return {
    classId: shape.classId,
    cx: (shape.x0 + shape.x1) / 2 / size,
    cy: (shape.y0 + shape.y1) / 2 / size,
    w: (shape.x1 - shape.x0) / size,
    h: (shape.y1 - shape.y0) / size,
  };
}

type PixelTest = (x: number, y: number) => boolean;

/** A random shape of the class, as a test on pixel centres (x + 0.5, y + 0.5). */
function shapeTest(classId: number, size: number, random: () => number): PixelTest {
  const extent = size * (0.15 + 0.3 * random());
  const cx = extent / 2 + random() * (size - extent);
  const cy = extent / 2 + random() * (size - extent);
  const r = extent / 2;
  if (classId === 0) return (x, y) => (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r;
  if (classId === 1) return (x, y) => Math.abs(x + 0.5 - cx) <= r && Math.abs(y + 0.5 - cy) <= r;
  // Equilateral triangle inscribed in the circle of radius r, at a random rotation.
  const turn = random() * 2 * Math.PI;
  const corners = [0, 1, 2].map((k) => [cx + r * Math.cos(turn + (2 * Math.PI * k) / 3), cy + r * Math.sin(turn + (2 * Math.PI * k) / 3)] as const);
  return (x, y) => {
    const px = x + 0.5;
    const py = y + 0.5;
    // Inside when on the same side of all three edges.
    const sides = corners.map(([ax, ay], k) => {
      const [bx, by] = corners[(k + 1) % 3]!;
      return (bx - ax) * (py - ay) - (by - ay) * (px - ax);
    });
    return sides.every((d) => d >= 0) || sides.every((d) => d <= 0);
  };
}

function pixelBounds(inside: PixelTest, size: number): { x0: number; y0: number; x1: number; y1: number } | undefined {
  let x0 = size;
  let y0 = size;
  let x1 = 0;
  let y1 = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (!inside(x, y)) continue;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x + 1);
      y1 = Math.max(y1, y + 1);
    }
  }
  return x1 > x0 ? { x0, y0, x1, y1 } : undefined;
}

/** Boxes closer than one pixel would make the tight-bounds check ambiguous. */
function touches(a: { x0: number; y0: number; x1: number; y1: number }, b: { x0: number; y0: number; x1: number; y1: number }): boolean {
  return a.x0 <= b.x1 && b.x0 <= a.x1 && a.y0 <= b.y1 && b.y0 <= a.y1;
}

function paint(rgb: Uint8Array, size: number, inside: PixelTest, b: { x0: number; y0: number; x1: number; y1: number }, color: readonly number[]): void {
  for (let y = b.y0; y < b.y1; y++) {
    for (let x = b.x0; x < b.x1; x++) if (inside(x, y)) rgb.set(color, (y * size + x) * 3);
  }
}

/** A saturated colour (hue on the RGB cube's edge) different from the other shapes' colours. */
function distinctColor(others: readonly DrawnShape[], random: () => number): [number, number, number] {
  for (;;) {
    const hue = random() * 6;
    const sector = Math.floor(hue);
    const rising = Math.round((hue - sector) * 255);
    const table: [number, number, number][] = [[255, rising, 0], [255 - rising, 255, 0], [0, 255, rising], [0, 255 - rising, 255], [rising, 0, 255], [255, 0, 255 - rising]];
    const color = table[sector]!;
    if (others.every((s) => s.color.some((c, i) => Math.abs(c - color[i]!) > 60))) return color;
  }
}

/** A gradient, stripes or blocks of random muted colours, plus a little noise. */
function drawBackground(size: number, random: () => number): Uint8Array {
  const muted = () => [0, 1, 2].map(() => BACKGROUND_LOW + NOISE + random() * (BACKGROUND_HIGH - BACKGROUND_LOW - 2 * NOISE));
  const a = muted();
  const b = muted();
  const angle = random() * Math.PI;
  const [ux, uy] = [Math.cos(angle), Math.sin(angle)];
  const kind = Math.floor(random() * 3);
  const period = 6 + random() * 14;
  const cell = 8 + Math.floor(random() * 17);
  const cells = Math.ceil(size / cell);
  const cellColors = Array.from({ length: cells * cells }, muted);
  const rgb = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let color: number[];
      if (kind === 0) {
        const t = ((x - size / 2) * ux + (y - size / 2) * uy) / size + 0.5;
        color = a.map((v, i) => v + (b[i]! - v) * Math.min(Math.max(t, 0), 1));
      } else if (kind === 1) {
        color = Math.floor((x * ux + y * uy) / (period / 2)) % 2 === 0 ? a : b;
      } else {
        color = cellColors[Math.floor(y / cell) * cells + Math.floor(x / cell)]!;
      }
      for (let c = 0; c < 3; c++) {
        const noisy = Math.round(color[c]! + (random() * 2 - 1) * NOISE);
        rgb[(y * size + x) * 3 + c] = Math.min(Math.max(noisy, BACKGROUND_LOW), BACKGROUND_HIGH);
      }
    }
  }
  return rgb;
}
