// The planner: its search is exact on its tables, the tables agree with the cost model, and its
// choice is never worse than `each` or `all`, fits the memory limit, or is refused clearly.
import t from 'tap';
import { builtinProfile } from '../../src/grouping/builtin-profiles.js';
import { predictMemory, predictStep } from '../../src/grouping/cost.js';
import { buildGroupTables } from '../../src/grouping/group-tables.js';
import { type Grouping, groupingCost, groupsFromStarts, searchGroupings } from '../../src/grouping/group-search.js';
import { NoPlanFitsError, candidateGrids, planGroupings } from '../../src/grouping/planner.js';
import { presetCfg, withInputSize } from '../../src/model/presets.js';
import { seededRandom } from '../../src/model/weights.js';
import { formatGrouping, parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan } from '../../src/tiles/plan.js';
import { randomGrouping } from '../helpers/random-net.js';

const tiny = presetCfg('tiny').network;
const front160 = withInputSize(presetCfg('yolov2-front').network, 160, 160);
const pi3 = builtinProfile('pi3');
const here = builtinProfile('this-machine');
const GIB = 1 << 30;

/** Every grouping of n layers: every subset of 1..n-1 as starts. */
function allGroupings(n: number) {
  return Array.from({ length: 1 << (n - 1) }, (_, mask) =>
    groupsFromStarts([0, ...Array.from({ length: n - 1 }, (_, i) => i + 1).filter((_, i) => mask & (1 << i))], n));
}

t.test('the boundary search finds the cheapest grouping pair on its tables, with and without a stash penalty', async (t) => {
  const groupings = allGroupings(tiny.layers.length);
  for (const [grid, devices] of [[{ rows: 2, cols: 2 }, 3], [{ rows: 3, cols: 2 }, 6], [{ rows: 1, cols: 1 }, 1]] as const) {
    const tables = buildGroupTables(tiny, grid, devices, 2, pi3);
    for (const lambda of [0, 1e-6, 1]) {
      let best = Infinity;
      for (const forward of groupings) for (const backward of groupings) best = Math.min(best, groupingCost(tables, { forward, backward }, lambda));
      const found = searchGroupings(tables, lambda);
      t.ok(Math.abs(found.cost - best) < 1e-12, `${grid.rows}x${grid.cols} on ${devices}, lambda ${lambda}: ${found.cost} vs brute force ${best}`);
      t.ok(Math.abs(groupingCost(tables, found.grouping, lambda) - found.cost) < 1e-12, 'the returned grouping has the returned cost');
    }
    // With one grouping fixed, the other is the best that goes with it.
    const forward = parseGrouping('0,2', tiny.layers.length);
    const best = Math.min(...groupings.map((backward) => groupingCost(tables, { forward, backward })));
    const found = searchGroupings(tables, 0, { forward });
    t.same(found.grouping.forward, forward);
    t.ok(Math.abs(found.cost - best) < 1e-12);
  }
});

t.test('on one device the tables sum to the cost model\'s step time', async (t) => {
  // One device: no strips, no reduce, so meeting at every group start changes nothing.
  const random = seededRandom(4);
  for (const [net, grid] of [[tiny, { rows: 2, cols: 3 }], [front160, { rows: 2, cols: 2 }]] as const) {
    const tables = buildGroupTables(net, grid, 1, 2, pi3);
    for (let i = 0; i < 10; i++) {
      const g: Grouping = { forward: randomGrouping(random, net.layers.length).groups, backward: randomGrouping(random, net.layers.length).groups };
      const plan = buildTilePlan({ net, grid, devices: 1, batch: 2, forwardGroups: g.forward, backwardGroups: g.backward });
      const step = predictStep(plan, pi3).stepSeconds;
      const sum = groupingCost(tables, g);
      t.ok(Math.abs(sum - step) < 1e-9 * step, `${net.name} ${formatGrouping(g.forward)} / ${formatGrouping(g.backward)}: tables ${sum}, model ${step}`);
    }
  }
});

t.test('candidate grids: enough tiles for every device, fitting the smallest map', async (t) => {
  const grids = candidateGrids(front160, 6, 24);
  t.ok(grids.every((g) => g.rows * g.cols >= 6 && g.rows * g.cols <= 24 && g.rows <= 10 && g.cols <= 10));
  t.ok(grids.some((g) => g.rows * g.cols === 7), 'counts up to twice the devices are all tried');
  t.notOk(grids.some((g) => g.rows * g.cols === 13), 'larger counts only as multiples of the devices');
  t.ok(grids.some((g) => g.rows === 4 && g.cols === 6));
});

const stepOf = (net: typeof tiny, grid: { rows: number; cols: number }, devices: number, batch: number, profile: typeof pi3, text: string) =>
  predictStep(buildTilePlan({ net, grid, devices, batch, forwardGroups: parseGrouping(text, net.layers.length), backwardGroups: parseGrouping(text, net.layers.length) }), profile).stepSeconds;

t.test('the choice is never slower than `each` or `all` on its grid, or on a fixed grid', async (t) => {
  for (const [net, devices, profile, batch] of [[front160, 4, pi3, 1], [front160, 3, here, 2], [tiny, 2, pi3, 2]] as const) {
    const result = planGroupings({ net, devices, batch, memoryLimitBytes: 4 * GIB, profile });
    const best = result.best;
    t.ok(best.fits && best.memory.peakBytes <= 4 * GIB);
    for (const text of ['each', 'all']) {
      const other = stepOf(net, best.grid, devices, batch, profile, text);
      t.ok(best.time.stepSeconds <= other + 1e-12, `${net.name} on ${devices}: ${best.time.stepSeconds} <= ${text} ${other}`);
      const listed = [best, ...result.runnerUps].find((r) => formatGrouping(r.forward) === formatGrouping(parseGrouping(text, net.layers.length)) && formatGrouping(r.backward) === formatGrouping(r.forward));
      t.ok(listed && Math.abs(listed.time.stepSeconds - other) < 1e-12, `${text} is the choice or a runner-up`);
    }
    const fixed = planGroupings({ net, devices, batch, memoryLimitBytes: 4 * GIB, profile, grid: { rows: 2, cols: 2 } });
    t.same(fixed.best.grid, { rows: 2, cols: 2 });
    for (const text of ['each', 'all']) t.ok(fixed.best.time.stepSeconds <= stepOf(net, { rows: 2, cols: 2 }, devices, batch, profile, text) + 1e-12);
    t.ok(best.time.stepSeconds <= fixed.best.time.stepSeconds + 1e-12, 'choosing the grid is no worse than fixing it');
  }
});

t.test('the choice fits the memory limit, trading time for memory when it must', async (t) => {
  const free = planGroupings({ net: front160, devices: 4, batch: 2, memoryLimitBytes: 4 * GIB, profile: pi3 });
  // A limit below the unconstrained choice's peak forces another plan.
  const limit = free.best.memory.peakBytes - 1;
  const tight = planGroupings({ net: front160, devices: 4, batch: 2, memoryLimitBytes: limit, profile: pi3 });
  t.ok(tight.best.fits);
  t.ok(tight.best.memory.peakBytes <= limit, `${tight.best.memory.peakBytes} <= ${limit}`);
  t.same(tight.best.memory, predictMemory(buildTilePlan({
    net: front160, grid: tight.best.grid, devices: 4, batch: 2, forwardGroups: tight.best.forward, backwardGroups: tight.best.backward,
  }), pi3), 'the reported memory is the cost model\'s for every device');
  t.ok(tight.best.time.stepSeconds >= free.best.time.stepSeconds - 1e-12, 'a tighter limit never predicts a faster step');
  for (const r of tight.runnerUps) t.equal(r.fits, r.memory.peakBytes <= limit, `${r.name}: fits is reported honestly`);
});

t.test('nothing fits: a clear refusal naming the smallest predicted memory', async (t) => {
  const limit = 100 * (1 << 20);
  try {
    planGroupings({ net: tiny, devices: 2, batch: 2, memoryLimitBytes: limit, profile: pi3 });
    t.fail('a plan was returned under a 100 MiB limit with 4 workers of 72 MiB each');
  } catch (error) {
    t.type(error, NoPlanFitsError);
    const message = (error as Error).message;
    t.match(message, /^no plan fits the memory limit of 100\.0 MiB per device on 2 devices: the smallest predicted peak is (\d+\.\d) MiB \(grid \d+x\d+, forward [\d,]+, backward [\d,]+\)/);
    const smallest = Number(/peak is (\d+\.\d) MiB/.exec(message)![1]);
    t.ok(smallest > 100, `${smallest} MiB is over the limit`);
  }
});

t.test('fixed groupings are kept, and the search is deterministic', async (t) => {
  const fixed = { forward: parseGrouping('0,8,10,12,14', 16) };
  const a = planGroupings({ net: front160, devices: 4, batch: 1, memoryLimitBytes: GIB, profile: pi3, fixed });
  t.same(a.best.forward, fixed.forward);
  const b = planGroupings({ net: front160, devices: 4, batch: 1, memoryLimitBytes: GIB, profile: pi3, fixed });
  t.same(b.best, a.best);
  const both = { forward: parseGrouping('each', 16), backward: parseGrouping('all', 16) };
  const c = planGroupings({ net: front160, devices: 4, batch: 1, memoryLimitBytes: GIB, profile: pi3, fixed: both });
  t.same([c.best.forward, c.best.backward], [both.forward, both.backward], 'only the grid is chosen');
});
