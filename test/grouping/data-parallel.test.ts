// The data-parallel comparison: replicas of the 1x1 plan, the batch rounded up to the devices, the
// faster grouping that fits, and its time per image.
import t from 'tap';
import { builtinProfile } from '../../src/grouping/builtin-profiles.js';
import { predictStep } from '../../src/grouping/cost.js';
import { predictDataParallel } from '../../src/grouping/data-parallel.js';
import { presetCfg, withInputSize } from '../../src/model/presets.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan } from '../../src/tiles/plan.js';

const net = withInputSize(presetCfg('yolov2-front').network, 96, 96);
const profile = builtinProfile('this-machine');

t.test('one device has no data-parallel alternative', async (t) => {
  t.equal(predictDataParallel(net, 1, 1, profile, 1 << 30), null);
});

t.test('the batch rounds up to a multiple of the devices; the step is the replicated 1x1 plan', async (t) => {
  const d = predictDataParallel(net, 2, 3, profile, 1 << 30)!;
  t.equal(d.batch, 4);
  const groups = parseGrouping(d.grouping, net.layers.length);
  const replicated = predictStep(buildTilePlan({ net, grid: { rows: 1, cols: 1 }, devices: 1, replicas: 2, batch: 2, forwardGroups: groups, backwardGroups: groups }), profile);
  t.equal(d.time.stepSeconds, replicated.stepSeconds);
  t.equal(d.secondsPerImage, replicated.stepSeconds / 4);
  t.ok(d.time.reduceBytesPerDevice > 0, 'the replicas all-reduce');
  const other = d.grouping === 'all' ? 'each' : 'all';
  const otherGroups = parseGrouping(other, net.layers.length);
  const otherStep = predictStep(buildTilePlan({ net, grid: { rows: 1, cols: 1 }, devices: 1, replicas: 2, batch: 2, forwardGroups: otherGroups, backwardGroups: otherGroups }), profile);
  t.ok(d.time.stepSeconds <= otherStep.stepSeconds, `${d.grouping} (${d.time.stepSeconds.toFixed(3)} s) is the faster of the two (${other}: ${otherStep.stepSeconds.toFixed(3)} s)`);
});

t.test('over the memory limit it says so', async (t) => {
  const d = predictDataParallel(net, 2, 2, profile, 1024)!;
  t.equal(d.fits, false);
});
