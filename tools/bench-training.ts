// Lean and fast, side by side in one run: plain tfjs training of the YOLOv2 front (whole network,
// autodiff tape, one process) against edgefuse on 1, 2 and 4 local devices. Step time, GFLOP/s of
// training (3x the forward FLOPs) and peak RSS of every process, and the ratios between them.
//   npm run build && node dist/bench-training.js [--input 608] [--steps 3] [--out docs/bench-training.json]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { forwardFlops, mapShapes } from '../src/model/layers.js';
import { presetCfg, withInputSize } from '../src/model/presets.js';
import { mean, mib, runClusterWithReports, steadySteps } from './lib/cluster-reports.js';
import { toolArgs } from './lib/tool-args.js';

const values = toolArgs('bench-training', 'Plain tfjs training of the YOLOv2 front against edgefuse on 1, 2 and 4 local devices, in one run: step time, GFLOP/s, peak RSS of every process and their ratios. Configs: devices:RxC:grouping[:lean][:workers=N], comma-separated.', {
    input: { type: 'string', default: '608' },
    steps: { type: 'string', default: '3' },
    // devices:grid:grouping[:lean][:workers=N] (lean: the launcher's --lean-runtime; workers: --workers N, default 1)
    configs: { type: 'string', default: '1:1x1:all,1:1x1:all:lean,2:2x1:each,4:2x2:each,4:2x2:0,8,10,12,14,4:2x2:0,8,10,12,14:lean,4:2x2:0,8,10,12,14:lean:workers=0' },
    out: { type: 'string', default: 'docs/bench-training.json' },
  });
const size = Number(values.input);
const net = withInputSize(presetCfg('yolov2-front').network, size, size);
const maps = mapShapes(net);
const trainingFlops = 3 * net.layers.reduce((sum, layer, l) => sum + forwardFlops(layer, maps[l]!, maps[l + 1]!), 0);
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

interface Row {
  readonly name: string;
  readonly processes: number;
  readonly secondsPerStep: number;
  readonly gflops: number;
  readonly peakRssMiB: readonly number[];
}
const rows: Row[] = [];

// Checked before anything runs. A config starts at a comma followed by devices:RxC: (groupings have
// commas of their own).
const configs = values.configs!.split(/,(?=\d+:\d+x\d+:)/).map((config) => {
  const [devices, grid, grouping, ...options] = config.split(':');
  const lean = options.includes('lean');
  const workers = options.map((o) => /^workers=(\d+)$/.exec(o)?.[1]).find((w) => w !== undefined);
  const known = options.every((o) => o === 'lean' || /^workers=\d+$/.test(o)) && new Set(options.map((o) => o.split('=')[0])).size === options.length;
  if (!/^\d+$/.test(devices!) || !/^\d+x\d+$/.test(grid ?? '') || !grouping || !known) {
    throw new Error(`bench-training: a config is devices:RxC:grouping[:lean][:workers=N], got "${config}"`);
  }
  return { devices: devices!, grid: grid!, grouping, lean, workers };
});

// Plain tfjs, one process.
const out = join(mkdtempSync(join(tmpdir(), 'edgefuse-plain-')), 'plain.json');
console.error(`bench: node dist/plain-tfjs-train.js --input ${size} --steps ${values.steps}`);
const plain = spawnSync(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'plain-tfjs-train.js'), '--input', String(size), '--steps', values.steps!, '--out', out], { encoding: 'utf8', timeout: 1_800_000 });
if (plain.status !== 0) throw new Error(`plain tfjs failed:\n${plain.stderr.slice(-2000)}`);
const plainResult = JSON.parse(readFileSync(out, 'utf8')) as { seconds: number[]; peakRssBytes: number };
const plainSeconds = mean(plainResult.seconds.length > 1 ? plainResult.seconds.slice(1) : plainResult.seconds);
rows.push({ name: 'plain tfjs (tf autodiff, whole front)', processes: 1, secondsPerStep: round(plainSeconds), gflops: round(trainingFlops / plainSeconds / 1e9, 1), peakRssMiB: [mib(plainResult.peakRssBytes)] });

// edgefuse: devices:grid:grouping.
for (const { devices, grid, grouping, lean, workers } of configs) {
  const launcher = { name: 'cluster', flags: lean ? ['--lean-runtime'] : [] } as const;
  const reports = runClusterWithReports(Number(devices), [
    '--model', 'yolov2-front', '--input', `${size}x${size}`, '--batch', '1', '--steps', values.steps!, '--memory-limit', '8G', '--grid', grid, '--forward-groups', grouping,
    ...(workers !== undefined ? ['--workers', workers] : []),
  ], launcher);
  // A step ends when the slowest device ends it; devices agree within the all-reduce's wait.
  const seconds = mean(reports.flatMap((r) => steadySteps(r).map((s) => s.seconds)));
  rows.push({
    name: `edgefuse, ${devices} device${devices === '1' ? '' : 's'}, grid ${grid}, groups ${grouping}${lean ? ', lean runtime' : ''}${workers === '0' ? ', compute on the main thread' : workers !== undefined ? `, ${workers} workers` : ''}`,
    processes: Number(devices), secondsPerStep: round(seconds), gflops: round(trainingFlops / seconds / 1e9, 1),
    peakRssMiB: reports.map((r) => mib(r.memory.measured.peakRssBytes)),
  });
}

const base = rows[0]!;
const result = {
  command: `node dist/bench-training.js --input ${size} --steps ${values.steps} --configs ${values.configs}`,
  trainingGflopPerImage: round(trainingFlops / 1e9, 1),
  note: 'this 2-core machine; every edgefuse device is a process with one compute worker unless the row says otherwise, all sharing the 2 cores',
  rows: rows.map((r) => ({ ...r, speedupOverPlain: round(base.secondsPerStep / r.secondsPerStep), memoryReductionOverPlain: round(base.peakRssMiB[0]! / Math.max(...r.peakRssMiB)) })),
};
mkdirSync(dirname(values.out!), { recursive: true });
writeFileSync(values.out!, `${JSON.stringify(result, null, 2)}\n`);
console.log(`\nYOLOv2 front ${size}x${size}, batch 1, ${result.trainingGflopPerImage} GFLOP per training step\n`);
console.log('| run | s/step | GFLOP/s | peak RSS per process (MiB) | speedup vs plain tfjs | memory vs plain tfjs |\n|---|---|---|---|---|---|');
for (const r of result.rows) console.log(`| ${r.name} | ${r.secondsPerStep} | ${r.gflops} | ${r.peakRssMiB.join(', ')} | ${r.speedupOverPlain}x | ${r.memoryReductionOverPlain}x less |`);
console.log(`\nWritten to ${values.out}`);
