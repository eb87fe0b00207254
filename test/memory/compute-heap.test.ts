// The compute heap a device's steps grow (the wasm heap never shrinks) against the memory estimate's
// row for it: the largest band, beside the filters kept for a run when a thread computes several of
// its tiles (ComputeParams), times the heap's growth. One run over every layer kept whole keeps
// every filter, its packed copy, and in backward the rotated filter and its packed copy: for the
// YOLOv2 front about 55 MB, far above its bands at 96x96.
import t from 'tap';
import { ensureBackend } from '../../src/fused/backend.js';
import { wasmHeapBytes } from '../../src/fused/wasm-kernels/heap.js';
import { createDeviceRuntime } from '../../src/loop/device-runtime.js';
import { runDeviceStep } from '../../src/loop/device-step.js';
import { estimateDeviceMemory } from '../../src/memory/estimate.js';
import { mapShapes } from '../../src/model/layers.js';
import { presetCfg, withInputSize } from '../../src/model/presets.js';
import { fillUniform, randomParams, seededRandom } from '../../src/model/weights.js';
import { createInMemoryCluster } from '../../src/peers/in-memory.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { copySubRegion, extractSubRegion } from '../../src/tiles/layout.js';
import { buildTilePlan } from '../../src/tiles/plan.js';
import { wholeMap } from '../../src/tiles/region.js';

await ensureBackend('wasm');

/** Two steps of the YOLOv2 front at 96x96, grouping `all`, on one device computing inline; the heap after them. */
async function heapAfterSteps(grid: { rows: number; cols: number }) {
  const net = withInputSize(presetCfg('yolov2-front').network, 96, 96);
  const maps = mapShapes(net);
  const groups = parseGrouping('all', net.layers.length);
  const plan = buildTilePlan({ net, grid, devices: 1, batch: 1, forwardGroups: groups, backwardGroups: groups });
  const estimated = estimateDeviceMemory(plan, 0, { runtimeBytes: 0, workers: 0 }).rows.find((r) => r.what.startsWith('compute heap'))!.bytes;
  const runtime = await createDeviceRuntime({ plan, rank: 0, params: randomParams(net, 5), threads: 0, backend: 'wasm' });
  const [exchange] = createInMemoryCluster(1, plan.tileDevice);
  const random = seededRandom(5);
  const first = maps[0]!;
  const last = maps[maps.length - 1]!;
  const input = fillUniform(new Float32Array(first.height * first.width * first.channels), random, -1, 1);
  const outputGradient = fillUniform(new Float32Array(last.height * last.width * last.channels), random, -1, 1);
  const inputLayout = { region: wholeMap(first.height, first.width), batch: 1, channels: first.channels };
  const outputLayout = { region: wholeMap(last.height, last.width), batch: 1, channels: last.channels };
  try {
    for (let step = 0; step < 2; step++) {
      await runtime.engine.loadParams();
      await runDeviceStep(runtime, exchange!, {
        input: (_tile, region, into) => copySubRegion(input, inputLayout, into, { ...inputLayout, region }, region),
        outputGradient: async (_tile, core) => extractSubRegion(outputGradient, outputLayout, core),
      }, { step, wantInputGradient: false });
    }
  } finally {
    await runtime.engine.close();
  }
  return { heap: wasmHeapBytes(), estimated };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

// First: the heap never shrinks, so the one-tile case must run before anything grows it.
t.test('a device with one tile keeps no filters across tasks: its heap stays small and within the estimate', async (t) => {
  const { heap, estimated } = await heapAfterSteps({ rows: 1, cols: 1 });
  t.ok(heap <= estimated, `heap ${mib(heap)} within the estimate's ${mib(estimated)}`);
  t.ok(heap < 48 * 2 ** 20, `heap ${mib(heap)}: not every filter kept`);
});

t.test('four tiles on one thread keep the run\'s filters, within the estimated compute heap', async (t) => {
  const { heap, estimated } = await heapAfterSteps({ rows: 2, cols: 2 });
  t.ok(heap <= estimated, `heap ${mib(heap)} within the estimate's ${mib(estimated)}`);
  // The filters kept for the run are most of it: an estimate without them (bands only) would be far below.
  t.ok(heap > 48 * 2 ** 20, `heap ${mib(heap)} holds the run's kept filters`);
});
