// The device runtime on this machine, side by side in one run: (1) per-device peak memory of the
// YOLOv2 front trained unpartitioned on one device against 4 local devices on a 2x2 grid, each
// beside the plan's prediction; (2) what overlapping communication with compute gains: the time
// compute workers sit idle per step, overlap on against off (alternated runs, same flags).
//   npm run build && node dist/bench-runtime.js [--input 608] [--steps 3] [--repeats 2] [--out docs/bench-runtime.json]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type DeviceReport, mean, mib, runClusterWithReports, steadySteps } from './lib/cluster-reports.js';
import { toolArgs } from './lib/tool-args.js';

const values = toolArgs('bench-runtime', 'Per-device peak memory (measured against predicted) of 1 and 4 local devices, and overlap on against off, in one run.', {
    input: { type: 'string', default: '608' },
    steps: { type: 'string', default: '3' },
    repeats: { type: 'string', default: '2' },
    grouping: { type: 'string', default: '0,8,10,12,14' },
    out: { type: 'string', default: 'docs/bench-runtime.json' },
  });
const run = (devices: number, flags: string[]): DeviceReport[] => runClusterWithReports(devices, [
  '--model', 'yolov2-front', '--input', `${values.input}x${values.input}`, '--batch', '1', '--steps', values.steps!, '--memory-limit', '8G', ...flags,
]);

// (1) Memory: one device unpartitioned (one group: a 1x1 grid exchanges nothing, and group
// boundaries would keep each boundary map twice), then 4 devices 2x2.
const single = run(1, ['--grid', '1x1', '--forward-groups', 'all']);
const four = run(4, ['--grid', '2x2', '--forward-groups', values.grouping!]);
const memoryRow = (name: string, r: DeviceReport) => ({
  name, rank: r.rank,
  measuredPeakMiB: mib(r.memory.measured.peakRssBytes), predictedMiB: mib(r.memory.predicted.totalBytes),
  predictionError: Math.round((r.memory.predicted.totalBytes / r.memory.measured.peakRssBytes - 1) * 1000) / 1000,
  computeHeapMiB: mib(r.memory.measured.computeHeapBytes), arenaMiB: mib(r.memory.measured.arenaBytes),
  secondsPerStep: Math.round(mean(steadySteps(r).map((s) => s.seconds)) * 100) / 100,
});
const memory = [memoryRow('1 device, 1x1 all', single[0]!), ...four.map((r) => memoryRow(`4 devices, 2x2 ${values.grouping}`, r))];
const largestOfFour = Math.max(...four.map((r) => r.memory.measured.peakRssBytes));

// (2) Overlap on/off, alternated so that drift in the machine's load hits both alike.
const overlap: { overlap: boolean; repeat: number; secondsPerStep: number; computeIdlePerStep: number; computePerStep: number }[] = [];
for (let repeat = 0; repeat < Number(values.repeats); repeat++) {
  for (const on of [true, false]) {
    const reports = run(4, ['--grid', '2x2', '--forward-groups', values.grouping!, '--overlap', on ? 'on' : 'off']);
    const steps = reports.flatMap(steadySteps);
    overlap.push({
      overlap: on, repeat,
      secondsPerStep: Math.round(mean(steps.map((s) => s.seconds)) * 1000) / 1000,
      computeIdlePerStep: Math.round(mean(steps.map((s) => s.phases.computeIdle)) * 1000) / 1000,
      computePerStep: Math.round(mean(steps.map((s) => s.phases.compute)) * 1000) / 1000,
    });
  }
}
const idle = (on: boolean) => mean(overlap.filter((o) => o.overlap === on).map((o) => o.computeIdlePerStep));

const result = {
  command: `node dist/bench-runtime.js --input ${values.input} --steps ${values.steps} --repeats ${values.repeats} --grouping ${values.grouping}`,
  machine: 'this 2-core machine; 4 devices share its 2 cores',
  memory,
  memoryReduction: Math.round((single[0]!.memory.measured.peakRssBytes / largestOfFour) * 100) / 100,
  overlap,
  idleWithOverlap: Math.round(idle(true) * 1000) / 1000,
  idleWithoutOverlap: Math.round(idle(false) * 1000) / 1000,
};
mkdirSync(dirname(values.out!), { recursive: true });
writeFileSync(values.out!, `${JSON.stringify(result, null, 2)}\n`);

console.log(`\n| configuration | rank | peak RSS (MiB) | predicted (MiB) | prediction error | compute heap (MiB) | arena (MiB) | s/step |`);
console.log('|---|---|---|---|---|---|---|---|');
for (const m of memory) console.log(`| ${m.name} | ${m.rank} | ${m.measuredPeakMiB} | ${m.predictedMiB} | ${(m.predictionError * 100).toFixed(1)}% | ${m.computeHeapMiB} | ${m.arenaMiB} | ${m.secondsPerStep} |`);
console.log(`\nPeak memory per device: 1 device / largest of 4 devices = ${result.memoryReduction}x`);
console.log(`\n| overlap | repeat | s/step | compute idle s/step | compute s/step |\n|---|---|---|---|---|`);
for (const o of overlap) console.log(`| ${o.overlap ? 'on' : 'off'} | ${o.repeat} | ${o.secondsPerStep} | ${o.computeIdlePerStep} | ${o.computePerStep} |`);
console.log(`\nCompute idle per step: ${result.idleWithOverlap} s with overlap, ${result.idleWithoutOverlap} s without. Written to ${values.out}`);
