// Region math against a brute-force dependency computation on small random networks.
import t from 'tap';
import { mapShapes, type FrontLayer, type MapShape } from '../../src/model/layers.js';
import { fusedRegions, inputSpan } from '../../src/tiles/fused-regions.js';
import { balancedSpans, checkGridFits, coreRegion, parseGrid, tileCount } from '../../src/tiles/grid.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan, exchangeRegions, exchangeStrips } from '../../src/tiles/plan.js';
import type { Region } from '../../src/tiles/region.js';
import { randomConfig, between } from '../helpers/random-net.js';
import { seededRandom } from '../../src/model/weights.js';

type Pixel = string; // "r,c", possibly outside the map

/** Every input position (inside or outside the map) that the given output positions read. */
function bruteDependencies(layer: FrontLayer, outputs: Set<Pixel>): Set<Pixel> {
  const deps = new Set<Pixel>();
  for (const p of outputs) {
    const [r, c] = p.split(',').map(Number) as [number, number];
    for (let i = 0; i < layer.size; i++)
      for (let j = 0; j < layer.size; j++) deps.add(`${r * layer.stride - layer.padBefore + i},${c * layer.stride - layer.padBefore + j}`);
  }
  return deps;
}

function regionPixels(r: Region): Set<Pixel> {
  const s = new Set<Pixel>();
  for (let i = r.rows.start; i < r.rows.end; i++) for (let j = r.cols.start; j < r.cols.end; j++) s.add(`${i},${j}`);
  return s;
}

function boundingBox(pixels: Set<Pixel>): Region {
  let r0 = Infinity, r1 = -Infinity, c0 = Infinity, c1 = -Infinity;
  for (const p of pixels) {
    const [r, c] = p.split(',').map(Number) as [number, number];
    r0 = Math.min(r0, r); r1 = Math.max(r1, r + 1); c0 = Math.min(c0, c); c1 = Math.max(c1, c + 1);
  }
  return { rows: { start: r0, end: r1 }, cols: { start: c0, end: c1 } };
}

const inside = (map: MapShape) => (p: Pixel) => {
  const [r, c] = p.split(',').map(Number) as [number, number];
  return r >= 0 && c >= 0 && r < map.height && c < map.width;
};

t.test('balanced spans partition and differ by at most one', async (t) => {
  for (let n = 1; n < 40; n++)
    for (let parts = 1; parts <= Math.min(n, 7); parts++) {
      const spans = balancedSpans(n, parts);
      t.equal(spans[0]!.start, 0);
      t.equal(spans[parts - 1]!.end, n);
      spans.forEach((s, i) => i > 0 && t.equal(s.start, spans[i - 1]!.end));
      const lengths = spans.map((s) => s.end - s.start);
      t.ok(Math.max(...lengths) - Math.min(...lengths) <= 1, `n=${n} parts=${parts}`);
    }
});

t.test('cores partition every map of random networks', async (t) => {
  for (let seed = 1; seed <= 30; seed++) {
    const { net, grid } = randomConfig(seed);
    for (const map of mapShapes(net)) {
      const count = new Map<Pixel, number>();
      for (let tile = 0; tile < tileCount(grid); tile++)
        for (const p of regionPixels(coreRegion(grid, map, tile))) count.set(p, (count.get(p) ?? 0) + 1);
      t.equal(count.size, map.height * map.width, `seed ${seed}: every pixel owned`);
      t.ok([...count.values()].every((v) => v === 1), `seed ${seed}: owned once`);
    }
  }
});

t.test('fused regions equal the brute-force dependency boxes', async (t) => {
  let checked = 0;
  for (let seed = 100; seed < 160; seed++) {
    const { net, grid } = randomConfig(seed);
    const maps = mapShapes(net);
    const random = seededRandom(seed);
    const last = between(random, 0, net.layers.length - 1);
    const first = between(random, 0, last);
    for (let tile = 0; tile < tileCount(grid); tile++) {
      const core = coreRegion(grid, maps[last + 1]!, tile);
      const regions = fusedRegions(net.layers, maps, first, last, core);
      let needed = regionPixels(core);
      for (let l = last; l >= first; l--) {
        const read = bruteDependencies(net.layers[l]!, needed);
        t.same(regions.read[l - first], boundingBox(read), `seed ${seed} tile ${tile} layer ${l} read region`);
        needed = new Set([...read].filter(inside(maps[l]!)));
        t.same(regions.held[l - first], boundingBox(needed), `seed ${seed} tile ${tile} map ${l} held region`);
        checked++;
      }
    }
  }
  t.ok(checked > 200, `checked ${checked} regions`);
});

t.test('input span of a conv and a pool', async (t) => {
  const conv = { kind: 'conv', filters: 1, size: 3, stride: 1, padBefore: 1, padTotal: 2, activation: 'leaky', batchNormalize: false } as const;
  t.same(inputSpan(conv, { start: 0, end: 4 }), { start: -1, end: 5 });
  const pool = { kind: 'maxpool', size: 2, stride: 2, padBefore: 0, padTotal: 1 } as const;
  t.same(inputSpan(pool, { start: 3, end: 5 }), { start: 6, end: 10 });
});

t.test('the strips of every exchange point cover each receiving region exactly once', async (t) => {
  for (let seed = 200; seed < 240; seed++) {
    const plan = buildTilePlan(randomConfig(seed));
    const points = [
      ...plan.forwardGroups.slice(1).map((_, i) => ['halo', i + 1] as const),
      ...plan.backward.flatMap((w, h) => (w.group.first > 0 ? [['grad', h] as const] : [])),
      ...plan.backward.flatMap((w, h) => (w.reuseForward === null && w.recomputeFrom > 0 ? [['recompute', h] as const] : [])),
    ];
    for (const [phase, group] of points) {
      const { strips } = exchangeStrips(plan, phase, group);
      const { wanted } = exchangeRegions(plan, phase, group);
      for (let v = 0; v < plan.tiles; v++) {
        const count = new Map<Pixel, number>();
        for (const s of strips.filter((s) => s.to === v)) for (const p of regionPixels(s.region)) count.set(p, (count.get(p) ?? 0) + 1);
        const target = regionPixels(wanted(v));
        t.ok([...count.keys()].every((p) => target.has(p)), `seed ${seed} ${phase} ${group} tile ${v}: strips stay inside the region`);
        if (phase === 'grad') {
          // A core receives one contribution per tile whose partial gradient overlaps it; pixels that
          // no output depends on (strided layers skip some) receive none and their gradient is 0.
          const sources = strips.filter((s) => s.to === v).map((s) => s.from);
          t.equal(new Set(sources).size, sources.length, `seed ${seed} grad ${group} tile ${v}: one strip per source`);
        } else {
          // Halo and recompute targets are assembled from the owners' cores: every pixel exactly once.
          t.equal(count.size, target.size, `seed ${seed} ${phase} ${group} tile ${v}: strips cover the region`);
          t.ok([...count.values()].every((c) => c === 1), `seed ${seed} ${phase} ${group} tile ${v}: no pixel twice`);
        }
      }
    }
  }
});

t.test('wide halos reach beyond the 8 neighbours', async (t) => {
  const config = randomConfig(7);
  const net = { ...config.net, input: { height: 16, width: 16, channels: 1 }, layers: Array.from({ length: 4 }, () => ({ kind: 'conv', filters: 1, size: 5, stride: 1, padBefore: 2, padTotal: 4, activation: 'leaky', batchNormalize: false }) as const) };
  const groups = parseGrouping('0,1', 4); // group 1: three 5x5 convs, a 6-pixel halo on 4x4 tiles
  const plan = buildTilePlan({ net, grid: { rows: 4, cols: 4 }, devices: 16, batch: 1, forwardGroups: groups, backwardGroups: groups });
  const { strips } = exchangeStrips(plan, 'halo', 1);
  t.ok(strips.filter((s) => s.to === 0).length > 4, 'tile 0 receives from tiles two steps away');
  t.ok(strips.some((s) => s.from === 10 && s.to === 0), 'tile 10 feeds tile 0');
});

t.test('grid and grouping errors name the problem', async (t) => {
  t.throws(() => parseGrid('2by2'), /RxC/);
  t.throws(() => parseGrid('0x2'), /at least one/);
  t.throws(() => parseGrouping('0,20', 16), /layer 20 is out of range 0..15/);
  t.throws(() => parseGrouping('0,8,4', 16), /must increase/);
  t.throws(() => parseGrouping('x', 16), /not a layer index/);
  t.same(parseGrouping('8,10', 16).map((g) => g.first), [0, 8, 10]);
  t.same(parseGrouping('all', 3), [{ first: 0, last: 2 }]);
  t.throws(() => checkGridFits({ rows: 5, cols: 1 }, [{ height: 4, width: 4, channels: 1 }]), /grid 5x1 is larger than map 0 \(4x4\)/);
});
