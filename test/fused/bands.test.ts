// Layers computed in bands of output rows (tiles/bands.ts, fused/tile-compute.ts) against the same
// tiles computed whole, and against tf.grad through every device of a plan, with band budgets so
// small that every layer of a small net is banded, down to one row per band.
import t from 'tap';
import { initBackend } from '../../src/fused/backend.js';
import { computeParams } from '../../src/fused/layer-ops.js';
import { type ComputeContext, backwardTile, forwardTile } from '../../src/fused/tile-compute.js';
import { CONSTANT_SCHEDULE, type FrontLayer, type Network, convLayer, mapShapes, maxpoolLayer } from '../../src/model/layers.js';
import { fillUniform, randomParams, seededRandom } from '../../src/model/weights.js';
import { bandWorkingSet, layerBands } from '../../src/tiles/bands.js';
import { type FusedRegions, fusedRegions } from '../../src/tiles/fused-regions.js';
import { coreRegion } from '../../src/tiles/grid.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { regionArea } from '../../src/tiles/region.js';
import { relativeError, verify } from '../../src/verify/verify.js';
import { randomConfig } from '../helpers/random-net.js';

await initBackend('wasm');

const TOLERANCE = 1e-4;
/** Budgets from one row per band up to a few rows, and whole layers. */
const BUDGETS = [1, 1500, 6000, 25000];

const net = (name: string, input: [number, number, number], layers: FrontLayer[], batch = 1): Network => ({
  name, input: { height: input[0], width: input[1], channels: input[2] }, layers,
  hyper: { batch, learningRate: 0.01, momentum: 0.9, decay: 0.0005, schedule: CONSTANT_SCHEDULE },
});

// Every layer kind the bands must handle: conv strides 1 and 2, kernels 1 to 5, batch norm or not,
// maxpool 2/2 (windows side by side) and 3/1 (windows overlapping), odd map heights.
const NETS = [
  net('strides', [23, 17, 3], [
    convLayer(4, 3, 1, { batchNormalize: true }), convLayer(5, 3, 2, { activation: 'relu' }), maxpoolLayer(2, 2),
    convLayer(3, 1, 1, { batchNormalize: true, activation: 'linear' }), maxpoolLayer(3, 1), convLayer(4, 5, 1, { pad: 1 }),
  ], 2),
  net('pools', [19, 21, 2], [
    maxpoolLayer(3, 1), convLayer(6, 3, 1, { batchNormalize: true }), maxpoolLayer(2, 2), convLayer(3, 2, 2, { pad: 0 }), maxpoolLayer(3, 1),
  ]),
];

t.test('bands partition the output rows within the budget', async (t) => {
  const random = seededRandom(5);
  for (const n of NETS) {
    const maps = mapShapes(n);
    const ctx = { layers: n.layers, maps, batch: n.hyper.batch };
    const regions = fusedRegions(n.layers, maps, 0, n.layers.length - 1, coreRegion({ rows: 2, cols: 2 }, maps[n.layers.length]!, 3));
    for (let l = 0; l < n.layers.length; l++) {
      const height = regions.held[l + 1]!.rows.end - regions.held[l + 1]!.rows.start;
      for (const budget of [1, Math.floor(random() * 40000), Infinity]) {
        const bands = layerBands(ctx, regions, l, budget);
        t.equal(bands[0]!.start, 0);
        t.equal(bands.at(-1)!.end, height);
        t.ok(bands.every((b, i) => b.end > b.start && (i === 0 || b.start === bands[i - 1]!.end)), 'contiguous, none empty');
        const rows = bands.map((b) => b.end - b.start);
        t.ok(Math.max(...rows) - Math.min(...rows) <= Math.max(...rows) / 2 + 1, `near-equal heights ${rows.join(',')}`);
        t.ok(rows[0] === 1 || bandWorkingSet(ctx, regions, l, rows[0]!, 0) <= budget, 'the part of a band of several rows that bands shrink fits the budget');
        if (budget === 1) t.equal(bands.length, height, 'one row per band');
        if (budget === Infinity) t.equal(bands.length, 1, 'an unlimited budget leaves the layer whole');
      }
    }
  }
});

/** A tile task's buffers, filled as the runtime would: the whole fused run of `n` for one tile. */
function tileCase(n: Network, regions: FusedRegions, seed: number) {
  const random = seededRandom(seed);
  const maps = mapShapes(n);
  const floats = (map: number) => n.hyper.batch * regionArea(regions.held[map - regions.firstLayer]!) * maps[map]!.channels;
  const input = fillUniform(new Float32Array(floats(regions.firstLayer)), random, -1, 1);
  const outputGradient = fillUniform(new Float32Array(floats(regions.lastLayer + 1)), random, -1, 1);
  const buckets = n.layers.map((layer, l) => (layer.kind === 'conv' ? layer.size * layer.size * maps[l]!.channels * layer.filters + layer.filters * (layer.batchNormalize ? 2 : 1) : 0));
  return { maps, floats, input, outputGradient, buckets };
}

/** `recompute`: layers whose stash is wiped (NaN) after forward, for backward to recompute. */
function runTile(n: Network, regions: FusedRegions, seed: number, bandBytes: number, recompute: ReadonlySet<number> = new Set()) {
  const c = tileCase(n, regions, seed);
  const params = computeParams(n, randomParams(n, seed));
  const ctx: ComputeContext = { layers: n.layers, maps: c.maps, batch: n.hyper.batch, params, bandBytes };
  const stash = new Map<number, Float32Array>();
  for (let l = regions.firstLayer; l <= regions.lastLayer; l++) stash.set(l, new Float32Array(c.floats(l + 1)));
  const output = new Float32Array(c.floats(regions.lastLayer + 1));
  forwardTile(ctx, regions, { input: c.input, stash: (l) => stash.get(l), output });
  const forward = { stash: [...stash.values()].map((s) => s.slice()), output };
  for (const l of recompute) stash.get(l)!.fill(Number.NaN);
  const largest = Math.max(...Array.from({ length: regions.lastLayer - regions.firstLayer + 2 }, (_, i) => c.floats(regions.firstLayer + i)));
  const gradients = [new Float32Array(largest), new Float32Array(largest)];
  const weights = new Map(c.buckets.map((length, l) => [l, new Float32Array(length).fill(Number.NaN)]));
  const partial = new Float32Array(c.floats(regions.firstLayer));
  let atPartial: { partial: Float32Array; firstFilterPending: boolean } | null = null;
  const first = n.layers[regions.firstLayer]!;
  backwardTile(ctx, regions, regions.firstLayer, {
    input: c.input, stash: (l) => stash.get(l)!, recompute, outputGradient: c.outputGradient.slice(), partial,
    gradient: (m) => gradients[m % 2]!, weightGradient: (l) => weights.get(l)!,
  }, () => {
    atPartial = { partial: partial.slice(), firstFilterPending: first.kind !== 'conv' || Number.isNaN(weights.get(regions.firstLayer)![0]) };
  });
  params.dispose();
  return { forward, partial, atPartial: atPartial as { partial: Float32Array; firstFilterPending: boolean } | null, weights };
}

t.test('a tile computed in bands equals the tile computed whole', async (t) => {
  const seen = { oneRow: 0, uneven: 0 };
  for (const n of NETS) {
    const maps = mapShapes(n);
    const last = n.layers.length - 1;
    const ctx = { layers: n.layers, maps, batch: n.hyper.batch };
    // A corner tile (padding on two sides) and an inner one of a 3x3 grid, through the whole net.
    for (const tile of [0, 4]) {
      const regions = fusedRegions(n.layers, maps, 0, last, coreRegion({ rows: 3, cols: 3 }, maps[last + 1]!, tile));
      const whole = runTile(n, regions, tile + 1, Infinity);
      for (const budget of BUDGETS) {
        const banded = runTile(n, regions, tile + 1, budget);
        const name = `${n.name} tile ${tile} budget ${budget}`;
        t.ok(banded.forward.stash.every((s, i) => s.every((v, j) => Object.is(v, whole.forward.stash[i]![j]))), `${name}: stashes bit for bit`);
        t.ok(banded.forward.output.every((v, j) => Object.is(v, whole.forward.output[j])), `${name}: output bit for bit`);
        t.ok(relativeError(banded.partial, whole.partial) < 1e-5, `${name}: partial input gradient ${relativeError(banded.partial, whole.partial).toExponential(1)}`);
        t.ok(banded.atPartial?.firstFilterPending, `${name}: onPartial comes before the first layer's filter gradient`);
        t.same(banded.atPartial?.partial, banded.partial, `${name}: the partial gradient is complete at onPartial`);
        for (const [l, w] of banded.weights) {
          if (w.length > 0) t.ok(relativeError(w, whole.weights.get(l)!) < 1e-5, `${name}: layer ${l} weight gradient ${relativeError(w, whole.weights.get(l)!).toExponential(1)}`);
        }
        for (let l = 0; l <= last; l++) {
          const bands = layerBands(ctx, regions, l, budget);
          const rows = bands[0]!.end - bands[0]!.start;
          if (bands.length > 1 && rows === 1) seen.oneRow++;
          if (bands.length > 1 && (bands.at(-1)!.end % rows) !== 0) seen.uneven++;
        }
      }
    }
  }
  t.ok(seen.oneRow > 0 && seen.uneven > 0, `one-row bands and bands that do not divide the height: ${JSON.stringify(seen)}`);
});

t.test('backward recomputing stashes equals backward on the kept stashes, bit for bit', async (t) => {
  const bits = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
  for (const n of NETS) {
    const maps = mapShapes(n);
    const last = n.layers.length - 1;
    const convs = n.layers.flatMap((l, i) => (l.kind === 'conv' ? [i] : []));
    // The first conv alone, every other conv, and every layer (runs of recomputed layers, pools too).
    const sets = [new Set(convs.slice(0, 1)), new Set(convs.filter((_, i) => i % 2 === 0)), new Set(n.layers.map((_, l) => l))];
    for (const tile of [0, 4]) {
      const regions = fusedRegions(n.layers, maps, 0, last, coreRegion({ rows: 3, cols: 3 }, maps[last + 1]!, tile));
      for (const budget of [1500, Infinity]) {
        const kept = runTile(n, regions, tile + 1, budget);
        for (const recompute of sets) {
          const redone = runTile(n, regions, tile + 1, budget, recompute);
          const name = `${n.name} tile ${tile} budget ${budget} recomputing ${[...recompute].join(',')}`;
          t.ok(bits(redone.partial, kept.partial), `${name}: partial gradient`);
          t.ok([...kept.weights].every(([l, w]) => bits(redone.weights.get(l)!, w)), `${name}: weight gradients`);
        }
      }
    }
  }
});

t.test('every device banded matches tf.grad', async (t) => {
  const seen = new Set<string>();
  const plans = [
    ...NETS.flatMap((n) => [
      { net: n, grid: { rows: 2, cols: 2 }, forward: 'all', backward: 'each', devices: 2 },
      { net: n, grid: { rows: 3, cols: 2 }, forward: 'each', backward: '0,2', devices: 3 },
      { net: n, grid: { rows: 1, cols: 1 }, forward: 'all', backward: 'all', devices: 1 },
    ]),
  ];
  for (const p of plans) {
    for (const bandBytes of BUDGETS) {
      const groups = (text: string) => parseGrouping(text, p.net.layers.length);
      const report = await verify({
        net: p.net, grid: p.grid, forwardGroups: groups(p.forward), backwardGroups: groups(p.backward),
        batch: p.net.hyper.batch, devices: p.devices, seed: 7, tolerance: TOLERANCE, bandBytes,
      });
      t.ok(report.ok, `${p.net.name} grid ${report.grid} forward ${p.forward} backward ${p.backward}, budget ${bandBytes}: ${report.maxRelError.toExponential(2)} (${report.worst})`);
    }
    for (const l of p.net.layers) seen.add(`${l.kind} ${l.size}/${l.stride}`);
  }
  for (let seed = 1; seed <= 40; seed++) {
    const config = randomConfig(seed);
    const report = await verify({ ...config, seed, tolerance: TOLERANCE, bandBytes: BUDGETS[seed % BUDGETS.length]! });
    t.ok(report.ok, `#${seed} ${config.describe}, budget ${BUDGETS[seed % BUDGETS.length]}: ${report.maxRelError.toExponential(2)} (${report.worst})`);
  }
  t.ok(['conv 3/1', 'conv 3/2', 'maxpool 2/2', 'maxpool 3/1'].every((k) => seen.has(k)), [...seen].join(', '));
});
