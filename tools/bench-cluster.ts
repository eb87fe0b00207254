// The emulated Pi cluster benchmark (root): the YOLOv2 front on 1..N emulated devices, each a
// namespace behind a shaped link and a cgroup with the same CPU quota for every device count (so
// devices never contend and speedups are honest). Per device count: the planner's choice, `each`,
// `all` and the reference groupings from FACTS.md; step time, speedup against one device (and one
// core of a device), peak memory per device and its reduction, bytes per step, and the planner's
// predicted step time against the measured one. JSON, a Markdown table and an SVG chart.
//   npm run build && sudo node dist/bench-cluster.js [--input 224] [--devices 1,2,3,4,6] [--cpus 0.33] [--cpu-period 10] [--repeats 1] [--groupings planner,each,all,reference,data] [--skip-one-core] [--profile FILE] [--out DIR]
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type DeviceReport, type StepRecord, lowerMedian, mean, mib, runClusterWithReports, steadySteps } from './lib/cluster-reports.js';
import { DEFAULT_CPU_PERIOD_MS } from './lib/emulated-cluster.js';
import { type LatencyRun, calibrateToSteps, fitLatency, scaleToQuota } from './lib/emulated-profile.js';
import { speedupChart } from './lib/svg-chart.js';
import { toolArgs } from './lib/tool-args.js';

const values = toolArgs('bench-cluster', 'The emulated Pi cluster benchmark (root): the YOLOv2 front on 1..N emulated devices (namespaces, shaped links, CPU quotas), every grouping compared, predicted against measured step time. JSON, a Markdown table and an SVG chart in --out.', {
    input: { type: 'string', default: '224' },
    devices: { type: 'string', default: '1,2,3,4,6' },
    cpus: { type: 'string' },
    rate: { type: 'string', default: '100mbit' },
    /** The CPU quota's period in ms (tools/lib/emulated-cluster.ts DEFAULT_CPU_PERIOD_MS). */
    'cpu-period': { type: 'string', default: String(DEFAULT_CPU_PERIOD_MS) },
    steps: { type: 'string', default: '3' },
    /** Runs of every row, interleaved round-robin within a device count; a row reports the median run. */
    repeats: { type: 'string', default: '1' },
    'skip-one-core': { type: 'boolean', default: false },
    /** Which of: planner, each, all, reference (both reference groupings), data (the data-parallel baseline: one image per device). */
    groupings: { type: 'string', default: 'planner,each,all,reference,data' },
    out: { type: 'string', default: 'docs/bench-cluster' },
    /** A profile measured earlier by `edge profile --input S` on this machine (default: measure one). */
    profile: { type: 'string' },
  });
const dist = dirname(fileURLToPath(import.meta.url));
const size = Number(values.input);
const counts = values.devices!.split(',').map(Number);
const repeats = Number(values.repeats);
if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`bench-cluster: --repeats must be a positive integer, got "${values.repeats}"`);
const largest = Math.max(...counts);
// The same quota for every device count. The largest cluster gets 60% of this machine's cores: the
// kernel's bridge and shaping work is not charged to the devices' cgroups, and at 4 x 0.4 of 2
// cores devices got only 67-93% of their quota (README, Emulated cluster benchmark).
const cpus = Number(values.cpus ?? ((0.6 * availableParallelism()) / largest).toFixed(3));
const linkMiB = (Number(/^(\d+)/.exec(values.rate!)![1]) * (values.rate!.endsWith('gbit') ? 1000 : 1) * 0.95) / 8 / 1.048576;
mkdirSync(values.out!, { recursive: true });

// The planner's view of an emulated device: this machine measured by `edge profile`, scaled to the
// quota, with the shaped link, and calibrated on 1-device steps in the emulator (lib/emulated-profile.ts).
const edge = join(dist, 'edge.js');
const input = `${size}x${size}`;
const profileFile = join(values.out!, 'emulated-profile.json');
/** The profile the planner gets for a cluster of `devices`: they differ only in the CPU per MiB moved (below). */
const profileFileFor = (devices: number) => (devices <= 2 ? profileFile : join(values.out!, `emulated-profile-${devices}-devices.json`));
const measuredFile = values.profile ?? join(values.out!, 'measured-profile.json');
if (!values.profile) {
  console.error(`bench: node dist/edge.js profile --input ${input} --out ${measuredFile}`);
  const run = spawnSync(process.execPath, [edge, 'profile', '--input', input, '--out', measuredFile], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'inherit'] });
  if (run.status !== 0) throw new Error('edge profile failed');
}
const measured = JSON.parse(readFileSync(measuredFile, 'utf8'));
const scaled = {
  ...measured,
  name: `emulated-${cpus}-cores`,
  description: `${measuredFile} at ${cpus} cores per device and a ${values.rate} link (the emulator's devices), rates and layer overhead calibrated on 1-device steps in the emulator (1x1 all and each, 2x2 each), CPU per MiB moved on data-parallel clusters (of the planned size from 3 devices on: emulated-profile-N-devices.json), link latency (per exchange point and ring round) on 2 devices 1x2 each`,
  compute: scaleToQuota(measured.compute, cpus),
  link: { ...measured.link, mibPerSecond: Math.round(linkMiB * 10) / 10 },
};
interface Candidate { name: string; grid: string; forward: string; backward: string; predicted: number; phases?: { compute: number; exchange: number; reduce: number } }
function plan(devices: number, fixed: string[] = []): { best: Candidate; runnerUps: Candidate[]; dataParallel: Candidate | null } {
  const run = spawnSync(process.execPath, [join(dist, 'edge.js'), 'plan', '--devices', String(devices), '--input', `${size}x${size}`, '--profile', profileFileFor(devices), '--memory-limit', '1G', '--json', ...fixed], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`edge plan failed: ${run.stderr.slice(-1000)}`);
  const json = JSON.parse(run.stdout);
  type Planned = { name: string; grid: string; forwardGroups: string; backwardGroups: string; stepSeconds: number; computeSeconds: number; exchangeSeconds: number; reduceSeconds: number };
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const candidate = (c: Planned): Candidate => ({
    name: c.name, grid: c.grid, forward: c.forwardGroups, backward: c.backwardGroups, predicted: c.stepSeconds,
    phases: { compute: round(c.computeSeconds), exchange: round(c.exchangeSeconds), reduce: round(c.reduceSeconds) },
  });
  // The data-parallel prediction is per image (the bench's data rows are timed per image).
  const d = json.dataParallel as { grouping: string; secondsPerImage: number } | null;
  const dataParallel = d && { name: 'data-parallel', grid: '1x1', forward: d.grouping, backward: d.grouping, predicted: d.secondsPerImage };
  return { best: candidate(json.best), runnerUps: json.runnerUps.map(candidate), dataParallel };
}

const HANDLING_INPUT = 64;
const emulator = (quota = cpus) => ({ name: 'emulator' as const, flags: ['--cpus', String(quota), '--cpu-period', values['cpu-period']!, '--rate', values.rate!, '--memory', '1G'] });
const common = ['--model', 'yolov2-front', '--input', `${size}x${size}`, '--steps', values.steps!, '--memory-limit', '1G'];
/** A run's step time: the median steady step, each step timed on its slowest device. */
const stepSeconds = (reports: DeviceReport[]) => lowerMedian(steadySteps(reports[0]!).map((_, i) => Math.max(...reports.map((r) => steadySteps(r)[i]!.seconds))));

// Calibration, apart from the table's rows: 1-device steps of the emulated device (1x1 `all` and
// `each`, and 2x2 `each`: what tiling costs) for the speed factor and the per-pass overhead, and
// the CPU that moving a MiB costs (below).
const calibrationShapes = [{ grid: '1x1', grouping: 'all' }, { grid: '1x1', grouping: 'each' }, { grid: '2x2', grouping: 'each' }];
// Each shape --repeats times, interleaved (machine noise then hits them alike), keeping per shape the
// median of the runs' fastest steady steps: the fastest step because other load on this machine
// only ever adds to a step; the median of runs because one run's fastest step still varied by 25%
// between runs minutes apart, and the per-pass cost is fitted from the difference of two steps.
// Then the link latency (paid once per exchange point and per ring round), from two devices exchanging at every layer (fitted last, on the
// calibrated compute and CPU per MiB).
const latencyShape = { devices: 2, grid: '1x2', grouping: 'each' };
const calibrationRuns = [...calibrationShapes, latencyShape].map(() => [] as number[]);
const fastestStep = (reports: DeviceReport[]) => Math.max(...reports.map((r) => Math.min(...steadySteps(r).map((s) => s.seconds))));
for (let round = 0; round < repeats; round++) {
  [...calibrationShapes.map((shape) => ({ ...shape, devices: 1 })), latencyShape].forEach(({ devices, grid, grouping }, i) => calibrationRuns[i]!.push(fastestStep(
    runClusterWithReports(devices, [...common, '--batch', '1', '--grid', grid, '--forward-groups', grouping, '--backward-groups', grouping], emulator()))));
}
const calibration = calibrateToSteps(edge, scaled, input, calibrationShapes.map((shape, i) => ({ ...shape, measuredSeconds: lowerMedian(calibrationRuns[i]!) })));
// The CPU that moving a MiB costs, per cluster size: N devices training one image each
// (data-parallel: one device's compute plus an all-reduce of every weight gradient) against one
// device, at a small input where the compute, and the noise in its CPU time, is small against the
// 13 MiB the all-reduce sums (at 608 the pair's difference came out 0 once and 5.9 CPU ms per MiB
// another time; at 128, 5.4 and 0.15). Per size, because on this 2-core machine the kernel's packet
// work for every device (veth, bridge, tbf, TCP in softirq) is charged to whichever task it
// interrupts: on 2 devices the cores are often idle and much of it is free, from 3 devices on it
// lands on the devices' quotas (4.3 CPU ms per MiB on 2 devices, 8.5 on 3, 8.4 on 4:
// docs/ab-session9.txt). A real board pays for its own packets alone. 2 always: the latency is
// fitted on 2 devices. --repeats rounds, each one device alone then every size; per size the median.
const trafficCounts = [...new Set([2, ...counts.filter((n) => n > 1)])].sort((a, b) => a - b);
const handlingRun = ['--model', 'yolov2-front', '--input', `${HANDLING_INPUT}x${HANDLING_INPUT}`, '--steps', '8', '--memory-limit', '1G', '--grid', '1x1', '--forward-groups', 'all', '--backward-groups', 'all'];
const cpuPerStep = (reports: DeviceReport[]) => mean(reports.map((r) => Math.min(...steadySteps(r).map((s) => s.cpuSeconds ?? Number.NaN))));
const handling = Array.from({ length: repeats }, () => {
  const alone = cpuPerStep(runClusterWithReports(1, [...handlingRun, '--batch', '1'], emulator()));
  return trafficCounts.map((devices) => {
    const cluster = runClusterWithReports(devices, [...handlingRun, '--parallel', 'data', '--batch', String(devices)], emulator());
    const movedMiB = mean(cluster.map((r) => (r.transport.bytesSent + r.transport.bytesReceived) / r.steps.length)) / 2 ** 20;
    const cpu = cpuPerStep(cluster);
    return { devices, alone, cluster: cpu, movedMiB, cpuMsPerMiB: ((cpu - alone) * 1000) / movedMiB };
  });
}).flat();
const cpuMsPerMiB = Object.fromEntries(trafficCounts.map((devices) =>
  [devices, Number(Math.max(0, lowerMedian(handling.filter((h) => h.devices === devices).map((h) => h.cpuMsPerMiB))).toPrecision(3))]));
// Measured in CPU time; the profile's device has `cpus` of a core, so it takes 1/cpus as long.
const withHandling = (devices: number) => ({ ...scaled.link, cpuMsPerMiB: Number((cpuMsPerMiB[devices]! / cpus).toPrecision(3)) });
const profile = {
  ...scaled,
  compute: {
    ...scaleToQuota(scaled.compute as Record<string, unknown>, calibration.speedFactor),
    layerOverheadMs: (scaled.compute.layerOverheadMs as number) / calibration.speedFactor + calibration.extraLayerOverheadMs,
  },
  link: withHandling(2),
};
const latencyRun: LatencyRun = { ...latencyShape, measuredSeconds: lowerMedian(calibrationRuns[calibrationShapes.length]!) };
const latency = fitLatency(edge, profile, input, latencyRun);
writeFileSync(profileFile, `${JSON.stringify({ ...profile, link: { ...profile.link, latencyMs: latency.latencyMs } }, null, 2)}\n`);
// Clusters of 3 and more devices: the same device, with the CPU per MiB measured at their size.
for (const devices of trafficCounts.filter((n) => n > 2)) {
  writeFileSync(profileFileFor(devices), `${JSON.stringify({ ...profile, link: { ...withHandling(devices), latencyMs: latency.latencyMs } }, null, 2)}\n`);
}
console.error(`bench: every rate x${calibration.speedFactor} and +${calibration.extraLayerOverheadMs} ms per layer pass, calibrated on ${JSON.stringify(calibration.runs)}; ` +
  `CPU ms per MiB moved by devices ${JSON.stringify(cpuMsPerMiB)} (medians of ${JSON.stringify(handling.map((h) => ({ ...h, cpuMsPerMiB: Number(h.cpuMsPerMiB.toPrecision(3)) })))} at ${HANDLING_INPUT}x${HANDLING_INPUT}); ` +
  `${latency.latencyMs} ms latency per exchange point (idle ping ${latency.profileLatencyMs}), fitted on ${JSON.stringify(latency.run)}`);

/** Host CPU time (all cores, seconds) from /proc/stat: busy and total. */
function hostCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - fields[3]! - fields[4]!, total };
}

interface Row {
  devices: number; name: string; grid: string; forward: string; backward: string; imagesPerStep: number;
  /** Seconds per image: a step's time divided by its images (1 for the tile plans, one per device for data-parallel). */
  predictedSeconds: number; measuredSeconds: number; peakRssMiB: number; megabytesPerStep: number;
  /** Seconds per image of every run of the row (--repeats), in run order (each run's median steady step); measuredSeconds is their median. */
  measuredRuns: number[];
  /** Predicted split (busiest device's compute, its exchange waits, the exposed reduce) and the measured phases (compute: the busiest device's; the rest: means over devices). */
  predictedPhases: { compute: number; exchange: number; reduce: number } | null;
  measuredPhases: { compute: number; exchangeWait: number; reduce: number; outsideFront: number };
  /** CPU seconds per step of the busiest device (every thread) against its quota's worth of the step. */
  cpuOfQuota: number;
  /** Cores of this machine busy during the run, outside and inside the devices (other load shows here). */
  hostBusyCores: number;
}
const rows: Row[] = [];
/** The run with the median time (the lower of the two middle ones), carrying every run's time. */
function medianRun(runs: readonly Row[]): Row {
  const median = lowerMedian(runs.map((r) => r.measuredSeconds));
  return { ...runs.find((r) => r.measuredSeconds === median)!, measuredRuns: runs.map((r) => r.measuredSeconds) };
}
function measure(devices: number, c: Candidate, quota = cpus, dataParallel = false): Row {
  const images = dataParallel ? devices : 1;
  const flags = dataParallel
    ? ['--parallel', 'data', '--batch', String(images), '--grid', '1x1', '--forward-groups', c.forward, '--backward-groups', c.backward]
    : ['--batch', '1', '--grid', c.grid, '--forward-groups', c.forward, '--backward-groups', c.backward];
  const before = hostCpu();
  const reports = runClusterWithReports(devices, [...common, ...flags], emulator(quota));
  const after = hostCpu();
  const steps = Number(values.steps);
  const perDevice = (pick: (s: StepRecord) => number) => reports.map((r) => mean(steadySteps(r).map(pick)));
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    devices, name: c.name, grid: dataParallel ? '1x1 each' : c.grid, forward: c.forward, backward: c.backward, imagesPerStep: images,
    predictedSeconds: Math.round(c.predicted * 1000) / 1000,
    measuredSeconds: Math.round((stepSeconds(reports) / images) * 1000) / 1000,
    measuredRuns: [],
    peakRssMiB: Math.max(...reports.map((r) => mib(r.memory.measured.peakRssBytes))),
    megabytesPerStep: Math.round((reports.reduce((sum, r) => sum + r.transport.bytesSent, 0) / steps / 1e6) * 10) / 10,
    predictedPhases: c.phases ?? null,
    measuredPhases: {
      compute: round(Math.max(...perDevice((s) => s.phases.compute))),
      exchangeWait: round(mean(perDevice((s) => s.phases.exchangeWait))),
      reduce: round(mean(perDevice((s) => s.phases.reduce))),
      outsideFront: round(mean(perDevice((s) => s.seconds - s.phases.step))),
    },
    cpuOfQuota: round(Math.max(...reports.map((r) => mean(steadySteps(r).map((s) => (s.cpuSeconds ?? Number.NaN) / (s.seconds * quota)))))),
    hostBusyCores: round(((after.busy - before.busy) / (after.total - before.total)) * availableParallelism()),
  };
}

for (const devices of counts) {
  const { best, runnerUps, dataParallel } = plan(devices);
  const chosen = values.groupings!.split(',');
  const wanted = ['each', 'all', 'reference 0,8,10,12,14', 'reference 1,2,4,8 / ends 1,5,7,9'].filter((name) => chosen.includes(name.split(' ')[0]!));
  const others = wanted.flatMap((name) => runnerUps.find((r) => r.name === name && r.grid === best.grid) ?? runnerUps.find((r) => r.name === name) ?? []);
  const candidates = devices === 1 ? [best] : [...(chosen.includes('planner') ? [{ ...best, name: `planner (${best.name})` }] : []), ...others];
  const runs: { c: Candidate; dataParallel: boolean; rows: Row[] }[] = candidates.map((c) => ({ c, dataParallel: false, rows: [] }));
  // The baseline the tile plans must beat: every device trains one whole image of a batch of N.
  // Its grouping is the one its prediction (edge plan's dataParallel) is for.
  if (dataParallel && chosen.includes('data')) runs.push({ c: dataParallel, dataParallel: true, rows: [] });
  // Round-robin, so that a slow spell of this shared machine falls on every row alike.
  for (let round = 0; round < repeats; round++) for (const run of runs) run.rows.push(measure(devices, run.c, cpus, run.dataParallel));
  for (const run of runs) rows.push(medianRun(run.rows));
  // What a later failure must not lose (result.json comes at the end).
  writeFileSync(join(values.out!, 'rows.partial.json'), `${JSON.stringify({ complete: false, rows }, null, 2)}\n`);
}
// Without a 1-device row (e.g. a repeat of some device counts) the ratios to it are NaN.
const single = rows.find((r) => r.devices === 1) ?? { grid: '1x1', forward: 'all', backward: 'all', measuredSeconds: Number.NaN, peakRssMiB: Number.NaN };
let oneCore: Row | null = null;
let oneCoreError: string | null = null;
if (!values['skip-one-core']) {
  // One core of a Pi-class device: a quarter of its quota (a Pi 3 has 4 cores).
  try {
    oneCore = medianRun([measure(1, { name: 'one core of a device', grid: single.grid, forward: single.forward, backward: single.backward, predicted: Number.NaN }, cpus / 4)]);
  } catch (error) {
    oneCoreError = (error as Error).message;
    console.error(`bench: the one-core run failed, the table goes without it: ${oneCoreError}`);
  }
}

const table = rows.map((r) => {
  // Best of the tile groupings: the data-parallel baseline is not a grouping the planner could pick.
  const sameCount = rows.filter((o) => o.devices === r.devices && o.imagesPerStep === 1);
  const fastest = sameCount.length > 0 ? Math.min(...sameCount.map((o) => o.measuredSeconds)) : Number.NaN;
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
  command: `node dist/bench-cluster.js --input ${size} --devices ${values.devices} --cpus ${cpus} --cpu-period ${values['cpu-period']} --rate ${values.rate} --steps ${values.steps}${repeats > 1 ? ` --repeats ${repeats}` : ''} --groupings ${values.groupings}${values['skip-one-core'] ? ' --skip-one-core' : ''}${values.profile ? ` --profile ${values.profile}` : ''} --out ${values.out}`,
  emulatedDevice: { cpus, cpuPeriodMs: Number(values['cpu-period']), memory: '1G', link: values.rate, profile: profileFile, profilesByDevices: Object.fromEntries(counts.map((n) => [n, profileFileFor(n)])), measuredProfile: measuredFile, calibration, calibrationRuns: calibrationShapes.map((shape, i) => ({ ...shape, fastestStepOfEachRun: calibrationRuns[i] })), cpuMsPerMiB, handlingRuns: handling, latency: { ...latency, fastestStepOfEachRun: calibrationRuns[calibrationShapes.length] } },
  oneCore,
  ...(oneCoreError ? { oneCoreError } : {}),
  rows: table,
};
writeFileSync(join(values.out!, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
rmSync(join(values.out!, 'rows.partial.json'), { force: true });
const markdown = [
  `YOLOv2 front ${size}x${size}, batch 1 (data-parallel: batch = devices, one image each; its times are per image); each device ${cpus} cores of this machine, 1 GiB, ${values.rate}${oneCore ? `; one core of a device: ${oneCore.measuredSeconds} s/step` : ''}`,
  '',
  '| devices | grouping | grid | s/image (median; range of runs) | predicted | vs best | speedup vs 1 device | vs 1 core | peak RSS (MiB) | memory reduction | MB sent/step |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
  ...table.map((r) => `| ${r.devices} | ${r.name} | ${r.grid} | ${r.measuredSeconds}${r.measuredRuns.length > 1 ? ` (${Math.min(...r.measuredRuns)}-${Math.max(...r.measuredRuns)})` : ''} | ${Number.isNaN(r.predictedSeconds) ? '-' : `${r.predictedSeconds} (${(r.predictionError * 100).toFixed(0)}%)`} | ${Number.isNaN(r.slowerThanBestMeasured) ? '-' : `${r.slowerThanBestMeasured >= 0 ? '+' : ''}${(r.slowerThanBestMeasured * 100).toFixed(0)}%`} | ${r.speedupOverOneDevice}x | ${'speedupOverOneCore' in r ? `${r.speedupOverOneCore}x` : '-'} | ${r.peakRssMiB} | ${r.memoryReduction}x | ${r.megabytesPerStep} |`),
  '',
  'Where the time went (seconds per step, predicted / measured): compute of the busiest device; exchange waits (predicted: the rest of its step before the exposed reduce; measured: mean over devices); reduce (predicted: exposed after the last window; measured: mean time from the last compute to the last reduction); outside the front (measured: data, tail, optimizer update); CPU the busiest device used over its quota; cores of this machine busy during the run.',
  '',
  '| devices | grouping | compute | exchange waits | reduce | outside front | CPU of quota | host busy cores |',
  '|---|---|---|---|---|---|---|---|',
  ...table.map((r) => {
    const p = r.predictedPhases;
    const m = r.measuredPhases;
    const pair = (a: number | undefined, b: number) => `${a === undefined ? '-' : a.toFixed(2)} / ${b.toFixed(2)}`;
    return `| ${r.devices} | ${r.name} | ${pair(p?.compute, m.compute)} | ${pair(p?.exchange, m.exchangeWait)} | ${pair(p?.reduce, m.reduce)} | ${m.outsideFront.toFixed(2)} | ${(r.cpuOfQuota * 100).toFixed(0)}% | ${r.hostBusyCores.toFixed(2)} |`;
  }),
].join('\n');
writeFileSync(join(values.out!, 'table.md'), `${markdown}\n`);
// The chart plots speedups against one device: none without a 1-device row.
if (!Number.isNaN(single.measuredSeconds)) writeFileSync(join(values.out!, 'chart.svg'), speedupChart(table.map((r) => ({ series: r.name.startsWith('planner') || r.devices === 1 ? 'planner' : r.name, devices: r.devices, speedup: r.speedupOverOneDevice, memoryMiB: r.peakRssMiB }))));
console.log(markdown);
console.log(`\nWritten to ${values.out}/result.json, table.md${Number.isNaN(single.measuredSeconds) ? '' : ', chart.svg'}`);
