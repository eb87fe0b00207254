// The plan validator accepts exactly the strips between the tiles and the head (output, outgrad)
// that a plan with a tail sends, and names what is wrong with any other.
import t from 'tap';
import { planValidator } from '../../src/loop/plan-messages.js';
import { presetCfg } from '../../src/model/presets.js';
import { parseTail } from '../../src/model/tail-cfg.js';
import { limitFront } from '../../src/model/tail-layers.js';
import type { StripFields } from '../../src/peers/codec.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan, headTile, planCore, stripEndpoints } from '../../src/tiles/plan.js';

const parsed = presetCfg('tiny-classifier');
const { net, tail } = limitFront(parsed.network, parseTail(parsed.tail, parsed.file), 2);
const groups = parseGrouping('each', net.layers.length);
const request = { net, grid: { rows: 2, cols: 2 }, devices: 2, batch: 2, forwardGroups: groups, backwardGroups: groups };
const plan = buildTilePlan({ ...request, tail });
const validate = planValidator(plan);
const head = headTile(plan);
const last = net.layers.length;
const channels = plan.maps[last]!.channels;
const core = (tile: number) => planCore(plan, last, tile);
const floatsOf = (s: StripFields) => plan.batch * (s.region.rows.end - s.region.rows.start) * (s.region.cols.end - s.region.cols.start) * channels;
const strip = (phase: 'output' | 'outgrad', from: number, to: number, changes: Partial<StripFields> = {}): StripFields =>
  ({ step: 3, image: 0, phase, group: 0, from, to, region: core(phase === 'output' ? from : to), ...changes });

t.test('the head is a pseudo tile on rank 0', async (t) => {
  t.equal(head, 4);
  t.same(stripEndpoints(plan), [0, 0, 1, 1, 0]);
  t.same(stripEndpoints(buildTilePlan(request)), [0, 0, 1, 1], 'no head without a tail');
});

t.test('output and outgrad strips of the plan pass', async (t) => {
  const output = strip('output', 2, head);
  t.equal(validate.strip(output, floatsOf(output), 1, 0), null, 'tile 2 (rank 1) sends its core to the head (rank 0)');
  const band = strip('output', 3, head, { region: { rows: { start: core(3).rows.start + 1, end: core(3).rows.end }, cols: core(3).cols } });
  t.equal(validate.strip(band, floatsOf(band), 1, 0), null, 'a band of whole rows of the core');
  const back = strip('outgrad', head, 3);
  t.equal(validate.strip(back, floatsOf(back), 0, 1), null, 'the head answers tile 3 on rank 1');
});

t.test('malformed output and outgrad strips are refused with the reason', async (t) => {
  const cases: [string, StripFields, number, number, RegExp][] = [
    ['output to a tile', strip('output', 2, 0), 1, 0, /output strips run from a tile to the head \(head = tile 4\), not 2>0/],
    ['output from the head', strip('output', head, 2, { region: core(2) }), 0, 1, /output strips run from a tile to the head/],
    ['outgrad to the head', strip('outgrad', 2, head, { region: core(2) }), 1, 0, /outgrad strips run from the head to a tile \(head = tile 4\), not 2>4/],
    ['outgrad between tiles', strip('outgrad', 0, 2), 0, 1, /outgrad strips run from the head to a tile/],
    ['another group', strip('output', 2, head, { group: 1 }), 1, 0, /output strips use group 0, got 1/],
    ['a region other than the core', strip('output', 2, head, { region: core(3) }), 1, 0, /strip output 0 2>4 region .* is not a row band of/],
    ['columns cut', strip('output', 2, head, { region: { rows: core(2).rows, cols: { start: core(2).cols.start, end: core(2).cols.end - 1 } } }), 1, 0, /is not a row band of/],
    ['a sender that does not own the tile', strip('output', 2, head), 0, 0, /rank 0 sent a strip from tile 2, which lives on rank 1/],
    ['the head\'s strips to a device without the head', strip('output', 2, head), 1, 1, /strip to tile 4, which lives on rank 0/],
    ['outgrad from rank 1', strip('outgrad', head, 3), 1, 1, /rank 1 sent a strip from tile 4, which lives on rank 0/],
    ['a tile past the head', strip('output', 2, head + 1), 1, 0, /strip to tile 5, the plan has tiles 0\.\.3 and the head 4/],
    ['a halo from the head', { ...strip('output', head, 2), phase: 'halo', group: 1, region: core(2) }, 0, 1, /halo strips run between tiles 0\.\.3, not 4>2/],
  ];
  for (const [what, s, sender, me, reason] of cases) t.match(validate.strip(s, floatsOf(s), sender, me), reason, what);
  const short = strip('output', 2, head);
  t.match(validate.strip(short, floatsOf(short) - 1, 1, 0), /strip output 0 2>4 carries \d+ floats, its region needs \d+/, 'a wrong float count');
  const frontOnly = planValidator(buildTilePlan(request));
  const output = strip('output', 2, 3);
  t.match(frontOnly.strip(output, floatsOf(output), 1, 1), /the plan has no tail, so no output strips/, 'a front-only plan has no output strips');
  t.match(frontOnly.strip(strip('output', 2, head), 1, 1, 0), /strip to tile 4, the plan has tiles 0\.\.3$/, 'nor a head');
});
