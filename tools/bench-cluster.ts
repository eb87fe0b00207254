// The emulated Pi cluster benchmark (root): the YOLOv2 front on 1..N emulated devices, each a
// namespace behind a shaped link and a cgroup with the same CPU quota for every device count (so
// devices never contend and speedups are honest). Per device count: the planner's choice, `each`,
// `all` and the reference groupings from FACTS.md; step time, speedup against one device (and one
// core of a device), peak memory per device and its reduction, bytes per step, and the planner's
// predicted step time against the measured one. JSON, a Markdown table and an SVG chart.
//   npm run build && sudo node dist/bench-cluster.js [--input 224] [--devices 1,2,3,4,6] [--cpus 0.33] [--groupings planner,each,all,reference,data] [--skip-one-core] [--out DIR]
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type DeviceReport, mean, mib, runClusterWithReports, steadySteps } from './lib/cluster-reports.js';
import { speedupChart } from './lib/svg-chart.js';

const { values } = parseArgs({
  options: {
    input: { type: 'string', default: '224' },
    devices: { type: 'string', default: '1,2,3,4,6' },
    cpus: { type: 'string' },
    rate: { type: 'string', default: '100mbit' },
    steps: { type: 'string', default: '3' },
    'skip-one-core': { type: 'boolean', default: false },
    /** Which of: planner, each, all, reference (both reference groupings), data (the data-parallel baseline: one image per device). */
    groupings: { type: 'string', default: 'planner,each,all,reference,data' },
    out: { type: 'string', default: 'docs/bench-cluster' },
  },
});
const dist = dirname(fileURLToPath(import.meta.url));
const size = Number(values.input);
const counts = values.devices!.split(',').map(Number);
const largest = Math.max(...counts);
// The same quota for every device count: the machine's cores shared by the largest cluster.
const cpus = Number(values.cpus ?? (2 / largest).toFixed(3));
const linkMiB = (Number(/^(\d+)/.exec(values.rate!)![1]) * (values.rate!.endsWith('gbit') ? 1000 : 1) * 0.95) / 8 / 1.048576;
mkdirSync(values.out!, { recursive: true });

// The planner's view of an emulated device: this machine's profile at the CPU quota, the shaped link.
const profileFile = join(values.out!, 'emulated-profile.json');
const base = JSON.parse(spawnSync(process.execPath, [join(dist, 'edge.js'), 'plan', '--devices', '1', '--show-profile'], { encoding: 'utf8' }).stdout);
const scaleRates = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).map(([k, v]) =>
  [k, typeof v === 'number' && /Gflops$/.test(k) ? v * cpus : typeof v === 'number' && /OverheadMs$/.test(k) ? v / cpus : v]));
const profile = {
  ...base,
  name: `emulated-${cpus}-cores`,
  description: `this machine's profile at ${cpus} cores per device and a ${values.rate} link (the emulator's devices)`,
  compute: { ...scaleRates(base.compute), conv: base.compute.conv.map(scaleRates) },
  link: { ...base.link, mibPerSecond: Math.round(linkMiB * 10) / 10 },
};
writeFileSync(profileFile, `${JSON.stringify(profile, null, 2)}\n`);

interface Candidate { name: string; grid: string; forward: string; backward: string; predicted: number }
function plan(devices: number, fixed: string[] = []): { best: Candidate; runnerUps: Candidate[] } {
  const run = spawnSync(process.execPath, [join(dist, 'edge.js'), 'plan', '--devices', String(devices), '--input', `${size}x${size}`, '--profile', profileFile, '--memory-limit', '1G', '--json', ...fixed], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`edge plan failed: ${run.stderr.slice(-1000)}`);
  const json = JSON.parse(run.stdout);
  const candidate = (c: { name: string; grid: string; forwardGroups: string; backwardGroups: string; stepSeconds: number }): Candidate =>
    ({ name: c.name, grid: c.grid, forward: c.forwardGroups, backward: c.backwardGroups, predicted: c.stepSeconds });
  return { best: candidate(json.best), runnerUps: json.runnerUps.map(candidate) };
}

const emulator = (quota = cpus) => ({ name: 'emulator' as const, flags: ['--cpus', String(quota), '--rate', values.rate!, '--memory', '1G'] });
const common = ['--model', 'yolov2-front', '--input', `${size}x${size}`, '--steps', values.steps!, '--memory-limit', '1G'];
const stepSeconds = (reports: DeviceReport[]) => mean(reports.flatMap((r) => steadySteps(r).map((s) => s.seconds)));

interface Row {
  devices: number; name: string; grid: string; forward: string; backward: string; imagesPerStep: number;
  /** Seconds per image: a step's time divided by its images (1 for the tile plans, one per device for data-parallel). */
  predictedSeconds: number; measuredSeconds: number; peakRssMiB: number; megabytesPerStep: number;
}
const rows: Row[] = [];
function measure(devices: number, c: Candidate, quota = cpus, dataParallel = false): Row {
  const images = dataParallel ? devices : 1;
  const flags = dataParallel
    ? ['--parallel', 'data', '--batch', String(images), '--grid', '1x1', '--forward-groups', c.forward, '--backward-groups', c.backward]
    : ['--batch', '1', '--grid', c.grid, '--forward-groups', c.forward, '--backward-groups', c.backward];
  const reports = runClusterWithReports(devices, [...common, ...flags], emulator(quota));
  const steps = Number(values.steps);
  return {
    devices, name: c.name, grid: dataParallel ? '1x1 each' : c.grid, forward: c.forward, backward: c.backward, imagesPerStep: images,
    predictedSeconds: Math.round(c.predicted * 1000) / 1000,
    measuredSeconds: Math.round((stepSeconds(reports) / images) * 1000) / 1000,
    peakRssMiB: Math.max(...reports.map((r) => mib(r.memory.measured.peakRssBytes))),
    megabytesPerStep: Math.round((reports.reduce((sum, r) => sum + r.transport.bytesSent, 0) / steps / 1e6) * 10) / 10,
  };
}

for (const devices of counts) {
  const { best, runnerUps } = plan(devices);
  const chosen = values.groupings!.split(',');
  const wanted = ['each', 'all', 'reference 0,8,10,12,14', 'reference 1,2,4,8 / ends 1,5,7,9'].filter((name) => chosen.includes(name.split(' ')[0]!));
  const others = wanted.flatMap((name) => runnerUps.find((r) => r.name === name && r.grid === best.grid) ?? runnerUps.find((r) => r.name === name) ?? []);
  const candidates = devices === 1 ? [best] : [...(chosen.includes('planner') ? [{ ...best, name: `planner (${best.name})` }] : []), ...others];
  for (const c of candidates) rows.push(measure(devices, c));
  // The baseline the tile plans must beat: every device trains one whole image of a batch of N.
  if (devices > 1 && chosen.includes('data')) {
    const one = rows.find((r) => r.devices === 1)!;
    rows.push(measure(devices, { name: 'data-parallel', grid: '1x1', forward: one.forward, backward: one.backward, predicted: Number.NaN }, cpus, true));
  }
}
const single = rows.find((r) => r.devices === 1)!;
let oneCore: Row | null = null;
if (!values['skip-one-core']) {
  // One core of a Pi-class device: a quarter of its quota (a Pi 3 has 4 cores).
  oneCore = measure(1, { name: 'one core of a device', grid: single.grid, forward: single.forward, backward: single.backward, predicted: Number.NaN }, cpus / 4);
}

const table = rows.map((r) => {
  // Best of the tile groupings: the data-parallel baseline is not a grouping the planner could pick.
  const sameCount = rows.filter((o) => o.devices === r.devices && o.imagesPerStep === 1);
  const fastest = Math.min(...sameCount.map((o) => o.measuredSeconds));
  return {
    ...r,
    speedupOverOneDevice: Math.round((single.measuredSeconds / r.measuredSeconds) * 100) / 100,
    ...(oneCore ? { speedupOverOneCore: Math.round((oneCore.measuredSeconds / r.measuredSeconds) * 100) / 100 } : {}),
    memoryReduction: Math.round((single.peakRssMiB / r.peakRssMiB) * 100) / 100,
    predictionError: Math.round((r.predictedSeconds / r.measuredSeconds - 1) * 1000) / 1000,
    slowerThanBestMeasured: Math.round((r.measuredSeconds / fastest - 1) * 1000) / 1000,
  };
});
const result = {
  command: `node dist/bench-cluster.js --input ${size} --devices ${values.devices} --cpus ${cpus} --rate ${values.rate} --steps ${values.steps} --groupings ${values.groupings}${values['skip-one-core'] ? ' --skip-one-core' : ''} --out ${values.out}`,
  emulatedDevice: { cpus, memory: '1G', link: values.rate, profile: profileFile },
  oneCore,
  rows: table,
};
writeFileSync(join(values.out!, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
const markdown = [
  `YOLOv2 front ${size}x${size}, batch 1 (data-parallel: batch = devices, one image each; its times are per image); each device ${cpus} cores of this machine, 1 GiB, ${values.rate}${oneCore ? `; one core of a device: ${oneCore.measuredSeconds} s/step` : ''}`,
  '',
  '| devices | grouping | grid | s/image | predicted | vs best | speedup vs 1 device | vs 1 core | peak RSS (MiB) | memory reduction | MB sent/step |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
  ...table.map((r) => `| ${r.devices} | ${r.name} | ${r.grid} | ${r.measuredSeconds} | ${Number.isNaN(r.predictedSeconds) ? '-' : `${r.predictedSeconds} (${(r.predictionError * 100).toFixed(0)}%)`} | ${r.slowerThanBestMeasured >= 0 ? '+' : ''}${(r.slowerThanBestMeasured * 100).toFixed(0)}% | ${r.speedupOverOneDevice}x | ${'speedupOverOneCore' in r ? `${r.speedupOverOneCore}x` : '-'} | ${r.peakRssMiB} | ${r.memoryReduction}x | ${r.megabytesPerStep} |`),
].join('\n');
writeFileSync(join(values.out!, 'table.md'), `${markdown}\n`);
writeFileSync(join(values.out!, 'chart.svg'), speedupChart(table.map((r) => ({ series: r.name.startsWith('planner') || r.devices === 1 ? 'planner' : r.name, devices: r.devices, speedup: r.speedupOverOneDevice, memoryMiB: r.peakRssMiB }))));
console.log(markdown);
console.log(`\nWritten to ${values.out}/result.json, table.md, chart.svg`);
