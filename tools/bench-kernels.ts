// Kernel benchmark: GFLOP/s of conv forward, input gradient and filter gradient at the YOLOv2 front's
// layer shapes (whole maps, and the largest band of each layer as tile compute runs it on one device:
// src/tiles/bands.ts) on each backend, wasm against cpu at the check shape, and the cost of tiling on one
// core (the front trained as a 2x2 grid against unpartitioned, measured alternately in one run).
//   node dist/bench-kernels.js [--input 608] [--tiling-input 320] [--repeats 3] [--tiling-only] [--out bench-results/kernels.json]
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { initBackend } from '../src/fused/backend.js';
import type { BackendName } from '../src/fused/backend-name.js';
import { createDeviceRuntime } from '../src/loop/device-runtime.js';
import { runDeviceStep } from '../src/loop/device-step.js';
import { type Network, forwardFlops, mapShapes } from '../src/model/layers.js';
import { presetCfg, withInputSize } from '../src/model/presets.js';
import { fillUniform, randomParams, seededRandom } from '../src/model/weights.js';
import { createInMemoryCluster } from '../src/peers/in-memory.js';
import { parseGrouping } from '../src/tiles/groups.js';
import { copySubRegion, extractSubRegion } from '../src/tiles/layout.js';
import { buildTilePlan } from '../src/tiles/plan.js';
import { BAND_BYTES, bandReadRows, layerBands } from '../src/tiles/bands.js';
import { fusedRegions } from '../src/tiles/fused-regions.js';
import { regionWidth, wholeMap } from '../src/tiles/region.js';
import { relativeError } from '../src/verify/verify.js';
import { lowerMedian } from './lib/cluster-reports.js';
import { toolArgs } from './lib/tool-args.js';

const values = toolArgs('bench-kernels', "GFLOP/s of conv forward, input gradient and filter gradient at the YOLOv2 front's layer shapes (whole maps and bands), and the cost of tiling on one core.", {
    input: { type: 'string', default: '608' },
    'tiling-input': { type: 'string', default: '320' },
    repeats: { type: 'string', default: '5' },
    'skip-cpu-check': { type: 'boolean', default: false },
    /** Only the cost of tiling (no kernel tables, no cpu check). */
    'tiling-only': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench-results/kernels.json' },
  });
const repeats = Number(values.repeats);

interface ConvShape { name: string; x: [number, number, number, number]; filter: [number, number, number, number] }

/** Distinct conv shapes of the front, with padding materialised as the fused code runs them (VALID). */
function frontShapes(net: Network): ConvShape[] {
  const maps = mapShapes(net);
  const seen = new Map<string, ConvShape>();
  net.layers.forEach((layer, l) => {
    if (layer.kind !== 'conv') return;
    const m = maps[l]!;
    const x: [number, number, number, number] = [1, m.height + layer.padTotal, m.width + layer.padTotal, m.channels];
    const name = `${m.height}x${m.width}x${m.channels} ${layer.size}x${layer.size} ->${layer.filters}`;
    if (!seen.has(name)) seen.set(name, { name, x, filter: [layer.size, layer.size, m.channels, layer.filters] });
  });
  return [...seen.values()];
}

/** Each conv layer's largest band as one device computes the unpartitioned front (1x1 grid, one group). */
function bandShapes(net: Network): ConvShape[] {
  const maps = mapShapes(net);
  const last = maps[maps.length - 1]!;
  const regions = fusedRegions(net.layers, maps, 0, net.layers.length - 1, wholeMap(last.height, last.width));
  const ctx = { layers: net.layers, maps, batch: 1 };
  return net.layers.flatMap((layer, l) => {
    if (layer.kind !== 'conv') return [];
    const [band] = layerBands(ctx, regions, l, BAND_BYTES);
    const rows = band!.end - band!.start;
    const m = maps[l]!;
    const x: [number, number, number, number] = [1, bandReadRows(layer, { start: 0, end: rows }).end, regionWidth(regions.read[l]!), m.channels];
    return [{ name: `layer ${l}: ${m.height}x${m.width}x${m.channels} ${layer.size}x${layer.size} ->${layer.filters}, band of ${rows} rows`, x, filter: [layer.size, layer.size, m.channels, layer.filters] }];
  });
}

const CHECK_SHAPE: ConvShape = { name: '104x104x32 3x3 ->64 (check)', x: [1, 106, 106, 32], filter: [3, 3, 32, 64] };

type Op = 'forward' | 'inputGradient' | 'filterGradient';

function runOp(op: Op, x: tf.Tensor4D, w: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor {
  if (op === 'forward') return tf.conv2d(x, w, 1, 'valid');
  if (op === 'inputGradient') return tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { strides: 1, pad: 'valid', dataFormat: 'NHWC', inputShape: x.shape }) as tf.Tensor;
  return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: w.shape }) as tf.Tensor;
}

async function timeOp(op: Op, shape: ConvShape, times: number): Promise<{ seconds: number; gflops: number; result: Float32Array }> {
  const random = seededRandom(7);
  const [n, h, w, c] = shape.x;
  const [k, , , out] = shape.filter;
  const outShape: [number, number, number, number] = [n, h - k + 1, w - k + 1, out];
  const x = tf.tensor4d(fillUniform(new Float32Array(n * h * w * c), random, -1, 1), shape.x);
  const filter = tf.tensor4d(fillUniform(new Float32Array(k * k * c * out), random, -1, 1), shape.filter);
  const dy = tf.tensor4d(fillUniform(new Float32Array(outShape.reduce((a, b) => a * b)), random, -1, 1), outShape);
  const flops = 2 * outShape[0] * outShape[1] * outShape[2] * out * k * k * c;
  let best = Infinity;
  let result: Float32Array = new Float32Array();
  // One untimed run first: it grows the wasm heap and sets up XNNPACK operators (steady state is
  // what training sees from its second step on).
  runOp(op, x, filter, dy).dispose();
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    const r = runOp(op, x, filter, dy);
    const data = (await r.data()) as Float32Array;
    best = Math.min(best, (performance.now() - started) / 1000);
    result = data;
    r.dispose();
  }
  tf.dispose([x, filter, dy]);
  return { seconds: best, gflops: flops / best / 1e9, result };
}

async function kernelTable(backend: BackendName, shapes: ConvShape[]) {
  await tf.setBackend(backend);
  const rows = [];
  for (const shape of shapes) {
    const row: Record<string, number | string> = { backend, shape: shape.name };
    for (const op of ['forward', 'inputGradient', 'filterGradient'] as const) {
      const r = await timeOp(op, shape, repeats);
      row[`${op}Gflops`] = Number(r.gflops.toFixed(2));
      process.stderr.write(`${backend} ${shape.name} ${op}: ${r.gflops.toFixed(2)} GFLOP/s\n`);
    }
    rows.push(row);
  }
  return rows;
}

/** One device training `net` on `grid` (threads 0: this thread); step() times one step. */
async function stepper(net: Network, grid: { rows: number; cols: number }, grouping: string) {
  const groups = parseGrouping(grouping, net.layers.length);
  const plan = buildTilePlan({ net, grid, devices: 1, batch: 1, forwardGroups: groups, backwardGroups: groups });
  const maps = mapShapes(net);
  const random = seededRandom(3);
  const input = fillUniform(new Float32Array(maps[0]!.height * maps[0]!.width * maps[0]!.channels), random, -1, 1);
  const last = maps[maps.length - 1]!;
  const dOut = fillUniform(new Float32Array(last.height * last.width * last.channels), random, -1, 1);
  const runtime = await createDeviceRuntime({ plan, rank: 0, params: randomParams(net, 1), threads: 0, backend: 'wasm' });
  await runtime.engine.loadParams();
  const [exchange] = createInMemoryCluster(1, plan.tileDevice);
  const inputLayout = { region: wholeMap(maps[0]!.height, maps[0]!.width), batch: 1, channels: maps[0]!.channels };
  let step = 0;
  return {
    async step(): Promise<number> {
      const started = performance.now();
      await runDeviceStep(runtime, exchange!, {
        input: (_t, region, into) => copySubRegion(input, inputLayout, into, { ...inputLayout, region }, region),
        outputGradient: async (_t, core) => extractSubRegion(dOut, { region: wholeMap(last.height, last.width), batch: 1, channels: last.channels }, core),
      }, { step: step++, wantInputGradient: false });
      return (performance.now() - started) / 1000;
    },
    close: () => runtime.engine.close(),
  };
}

async function tilingCost(net: Network) {
  await tf.setBackend('wasm');
  const variants = [
    { name: 'unpartitioned', grid: { rows: 1, cols: 1 }, grouping: 'all' },
    { name: '2x2 all', grid: { rows: 2, cols: 2 }, grouping: 'all' },
    { name: '2x2 each', grid: { rows: 2, cols: 2 }, grouping: 'each' },
  ];
  // Steady steps: one runtime per variant, its first step (arena and heap growth, kernel set-up)
  // untimed. Until session 7 every sample was the first step of a new runtime, which charged the
  // tiled variants their larger set-up: 2x2 `each` at 608 came out 1.39x, steadily it is less.
  const steppers = [];
  for (const v of variants) steppers.push(await stepper(net, v.grid, v.grouping));
  for (const s of steppers) await s.step();
  const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  // Alternate the variants so machine noise hits them alike.
  for (let r = 0; r < repeats; r++) for (const [i, v] of variants.entries()) samples.get(v.name)!.push(await steppers[i]!.step());
  for (const s of steppers) await s.close();
  const base = lowerMedian(samples.get('unpartitioned')!);
  const maps = mapShapes(net);
  const trainFlops = 3 * net.layers.reduce((sum, layer, l) => sum + forwardFlops(layer, maps[l]!, maps[l + 1]!), 0);
  return variants.map((v) => {
    const s = lowerMedian(samples.get(v.name)!);
    return { variant: v.name, medianStepSeconds: Number(s.toFixed(3)), ratioToUnpartitioned: Number((s / base).toFixed(3)), usefulGflops: Number((trainFlops / s / 1e9).toFixed(2)), samples: samples.get(v.name) };
  });
}

const backend = await initBackend();
const available: BackendName[] = backend.name === 'tensorflow' ? ['tensorflow', 'wasm'] : ['wasm'];
const front = presetCfg('yolov2-front').network;
const net = withInputSize(front, Number(values.input), Number(values.input));
const kernels = [];
if (!values['tiling-only']) for (const name of available) kernels.push(...(await kernelTable(name, [CHECK_SHAPE, ...frontShapes(net), ...bandShapes(net)])));

// wasm against the cpu reference at the check shape (the cpu filter gradient takes about a minute).
const cpuCheck: Record<string, number> = {};
if (!values['skip-cpu-check'] && !values['tiling-only']) {
  for (const op of ['forward', 'inputGradient', 'filterGradient'] as const) {
    await tf.setBackend('wasm');
    const wasm = await timeOp(op, CHECK_SHAPE, 1);
    await tf.setBackend('cpu');
    const cpu = await timeOp(op, CHECK_SHAPE, 1);
    cpuCheck[`${op}RelErrorVsCpu`] = relativeError(wasm.result, cpu.result);
    cpuCheck[`${op}CpuGflops`] = Number(cpu.gflops.toFixed(3));
    process.stderr.write(`cpu check ${op}: relative error ${cpuCheck[`${op}RelErrorVsCpu`]!.toExponential(2)}, cpu ${cpu.gflops.toFixed(3)} GFLOP/s\n`);
  }
}

const tilingNet = withInputSize(front, Number(values['tiling-input']), Number(values['tiling-input']));
const tiling = await tilingCost(tilingNet);
const result = {
  machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
  backendNotes: backend.notes,
  input: Number(values.input),
  kernels,
  cpuCheck,
  tiling: { input: Number(values['tiling-input']), threads: 1, rows: tiling },
};
mkdirSync(dirname(values.out!), { recursive: true });
writeFileSync(values.out!, JSON.stringify(result, null, 2));
console.log(JSON.stringify(result));
console.error('\n| backend | shape | forward GFLOP/s | input grad GFLOP/s | filter grad GFLOP/s |\n|---|---|---|---|---|');
for (const k of kernels) console.error(`| ${k.backend} | ${k.shape} | ${k.forwardGflops} | ${k.inputGradientGflops} | ${k.filterGradientGflops} |`);
console.error('\n| YOLOv2 front ' + values['tiling-input'] + ' | step s | vs unpartitioned | useful GFLOP/s |\n|---|---|---|---|');
for (const r of tiling) console.error(`| ${r.variant} | ${r.medianStepSeconds} | ${r.ratioToUnpartitioned} | ${r.usefulGflops} |`);
