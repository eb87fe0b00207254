// `edge plan`: predict and choose the grid and groupings for a cluster, without running anything.
import { parseArgs } from 'node:util';
import { type PlanCandidate, type PlanResult, NoPlanFitsError } from '../grouping/planner.js';
import { type DataParallelPrediction, predictDataParallel } from '../grouping/data-parallel.js';
import type { DeviceProfile } from '../grouping/profile.js';
import { formatBytes, parseByteSize } from '../memory/estimate.js';
import type { Network } from '../model/layers.js';
import { loadModel } from '../model/load.js';
import { withInputSize } from '../model/presets.js';
import { formatGrouping } from '../tiles/groups.js';
import { planFromFlags } from './auto-plan.js';
import { DEFAULT_PROFILE, loadProfileOption } from './profile-option.js';
import { UsageError, asUsage, parseNonNegativeInt, parsePositiveInt, parseSize } from './usage-error.js';

export const PLAN_HELP = `Usage: edge plan --devices N [options]

Chooses the tile grid and the forward and backward groupings with the smallest predicted step time
whose predicted peak memory fits on every device, and compares it with \`each\`, \`all\` and the
reference groupings. Nothing runs: the prediction comes from a device profile (see README, Planning).

  --model M              Darknet .cfg file or preset (yolov2-front, tiny)       [yolov2-front]
  --input HxW            input size (the front is fully convolutional)            [from cfg]
  --front N              tile-partition only the first N layers          [every front layer]
  --devices N            devices in the cluster                                   [required]
  --batch N              images per step                                         [cfg batch]
  --memory-limit SIZE    per-device limit on the predicted peak                          [1G]
  --profile P            this-machine | pi3 | a JSON profile file          [${DEFAULT_PROFILE}]
  --workers N            compute workers per device                        [the profile's]
  --grid RxC|auto        fix the grid, or let the planner choose                       [auto]
  --forward-groups S     fix the forward grouping (each | all | 0,8,...), or auto      [auto]
  --backward-groups S    fix the backward grouping, or auto                            [auto]
  --max-tiles N          most tiles considered            [devices x max(4, 2 x workers)]
  --json                 print one JSON object
  --show-profile         print the profile as JSON (a template for --profile FILE) and exit

Exit status: 0 a plan fits, 1 none fits, 2 bad input.`;

function planNetwork(values: { model?: string; input?: string; front?: string }): Network {
  let net = loadModel(values.model ?? 'yolov2-front').network;
  if (values.front !== undefined) {
    const front = parsePositiveInt('--front', values.front, net.layers.length);
    if (front > net.layers.length) throw new UsageError(`--front ${front}: the model has ${net.layers.length} leading conv/maxpool layers`);
    net = { ...net, layers: net.layers.slice(0, front) };
  }
  if (values.input) {
    const size = parseSize('--input', values.input);
    net = withInputSize(net, size.height, size.width);
  }
  return net;
}

const gridText = (c: PlanCandidate) => `${c.grid.rows}x${c.grid.cols}`;

function candidateJson(c: PlanCandidate) {
  const t = c.time;
  return {
    name: c.name,
    grid: gridText(c),
    forwardGroups: formatGrouping(c.forward),
    backwardGroups: formatGrouping(c.backward),
    stepSeconds: t.stepSeconds,
    computeSeconds: t.computeSeconds,
    exchangeSeconds: t.exchangeSeconds,
    reduceSeconds: t.reduceSeconds,
    redundancy: t.redundancy,
    stripBytesPerDevice: Math.max(...t.devices.map((d) => Math.max(d.sentBytes, d.receivedBytes))),
    messagesPerDevice: Math.max(...t.devices.map((d) => d.messages)),
    reduceBytesPerDevice: t.reduceBytesPerDevice,
    peakMemoryBytes: c.memory.peakBytes,
    memoryPerDevice: c.memory.perDevice,
    fits: c.fits,
  };
}

function dataParallelJson(d: DataParallelPrediction) {
  return { batch: d.batch, grouping: d.grouping, stepSeconds: d.time.stepSeconds, secondsPerImage: d.secondsPerImage, reduceBytesPerDevice: d.time.reduceBytesPerDevice, peakMemoryBytes: d.memory.peakBytes, fits: d.fits };
}

function dataParallelLine(d: DataParallelPrediction, best: PlanCandidate, batch: number): string {
  return `data-parallel (--parallel data --batch ${d.batch} --forward-groups ${d.grouping}): ${d.batch} images per step in ${d.time.stepSeconds.toFixed(2)} s, ` +
    `${d.secondsPerImage.toFixed(2)} s per image (the plan above: ${(best.time.stepSeconds / batch).toFixed(2)}); ${formatBytes(d.memory.peakBytes)} per device${d.fits ? '' : ', over the limit'}`;
}

function printText(net: Network, devices: number, batch: number, limit: number, profile: DeviceProfile, result: PlanResult, seconds: number, dataParallel: DataParallelPrediction | null): void {
  const b = result.best;
  const t = b.time;
  const json = candidateJson(b);
  const perDevice = b.memory.perDevice;
  const lines = [
    `plan for ${net.name} ${net.input.height}x${net.input.width}, batch ${batch}, ${devices} device${devices > 1 ? 's' : ''}, ` +
      `profile ${profile.name} (${profile.compute.workers} worker${profile.compute.workers > 1 ? 's' : ''}), memory limit ${formatBytes(limit)}`,
    `  grid             ${gridText(b)} (${b.grid.rows * b.grid.cols} tiles)`,
    `  forward groups   ${formatGrouping(b.forward)}`,
    `  backward groups  ${formatGrouping(b.backward)}`,
    `  step             ${t.stepSeconds.toFixed(2)} s = compute ${t.computeSeconds.toFixed(2)} + exchange waits ${t.exchangeSeconds.toFixed(2)} + exposed reduce ${t.reduceSeconds.toFixed(2)}`,
    `  redundant compute ${t.redundancy.toFixed(3)}x the unpartitioned FLOPs`,
    `  traffic          strips up to ${formatBytes(json.stripBytesPerDevice)} in ${json.messagesPerDevice} messages per device; all-reduce ${formatBytes(t.reduceBytesPerDevice)} per device`,
    `  memory           ${formatBytes(Math.min(...perDevice))} to ${formatBytes(Math.max(...perDevice))} per device`,
    `  searched         ${result.gridsConsidered} grids (${result.gridsSearched} in depth), ${result.planEvaluations} step predictions, ${result.memoryEvaluations} memory predictions in ${seconds.toFixed(1)} s`,
    '',
    `  ${'name'.padEnd(34)} ${'grid'.padEnd(5)} ${'forward'.padEnd(22)} ${'backward'.padEnd(22)} ${'step s'.padStart(7)} ${'compute'.padStart(7)} ${'exch'.padStart(6)} ${'reduce'.padStart(6)} ${'memory'.padStart(10)}  fits`,
    ...[b, ...result.runnerUps].map((c) => {
      const clip = (s: string) => (s.length > 22 ? `${s.slice(0, 19)}...` : s);
      return `  ${c.name.padEnd(34)} ${gridText(c).padEnd(5)} ${clip(formatGrouping(c.forward)).padEnd(22)} ${clip(formatGrouping(c.backward)).padEnd(22)} ` +
        `${c.time.stepSeconds.toFixed(2).padStart(7)} ${c.time.computeSeconds.toFixed(2).padStart(7)} ${c.time.exchangeSeconds.toFixed(2).padStart(6)} ` +
        `${c.time.reduceSeconds.toFixed(2).padStart(6)} ${formatBytes(c.memory.peakBytes).padStart(10)}  ${c.fits ? 'yes' : 'no'}`;
    }),
    ...(dataParallel ? ['', `  ${dataParallelLine(dataParallel, b, batch)}`] : []),
    '',
    `train with: --grid ${gridText(b)} --forward-groups ${formatGrouping(b.forward)} --backward-groups ${formatGrouping(b.backward)}${batch !== net.hyper.batch ? ` --batch ${batch}` : ''}`,
  ];
  console.log(lines.join('\n'));
}

export async function planCommand(argv: string[]): Promise<number> {
  const { values } = asUsage(() =>
    parseArgs({
      args: argv,
      options: {
        model: { type: 'string' }, input: { type: 'string' }, front: { type: 'string' }, devices: { type: 'string' }, batch: { type: 'string' },
        'memory-limit': { type: 'string' }, profile: { type: 'string' }, workers: { type: 'string' },
        grid: { type: 'string' }, 'forward-groups': { type: 'string' }, 'backward-groups': { type: 'string' }, 'max-tiles': { type: 'string' },
        json: { type: 'boolean' }, 'show-profile': { type: 'boolean' }, help: { type: 'boolean' },
      },
      strict: true,
    }),
  );
  if (values.help) {
    console.log(PLAN_HELP);
    return 0;
  }
  const workers = values.workers === undefined ? undefined : parseNonNegativeInt('--workers', values.workers);
  if (workers === 0) throw new UsageError('--workers must be at least 1 for planning (0 computes on the main thread: plan it as 1)');
  const profile = loadProfileOption(values.profile, workers);
  if (values['show-profile']) {
    console.log(JSON.stringify(profile, null, 2));
    return 0;
  }
  if (!values.devices) throw new UsageError(`plan needs --devices N\n\n${PLAN_HELP}`);
  const setup = asUsage(() => {
    const net = planNetwork(values);
    return {
      net,
      devices: parsePositiveInt('--devices', values.devices, 1),
      batch: parsePositiveInt('--batch', values.batch, net.hyper.batch),
      memoryLimitBytes: parseByteSize(values['memory-limit'] ?? '1G'),
      maxTiles: values['max-tiles'] === undefined ? undefined : parsePositiveInt('--max-tiles', values['max-tiles'], 1),
    };
  });
  const started = performance.now();
  let result: PlanResult;
  try {
    result = planFromFlags({
      ...setup, profile,
      grid: values.grid ?? 'auto', forward: values['forward-groups'] ?? 'auto', backward: values['backward-groups'] ?? 'auto',
      ...(setup.maxTiles !== undefined ? { maxTiles: setup.maxTiles } : {}),
    });
  } catch (error) {
    // Nothing fits: a valid question with a negative answer (exit 1), not bad input.
    if (error instanceof NoPlanFitsError) {
      if (values.json) console.log(JSON.stringify({ ok: false, error: (error as Error).message }));
      else console.error(`edge: ${(error as Error).message}`);
      return 1;
    }
    throw error;
  }
  const seconds = (performance.now() - started) / 1000;
  const { net, devices, batch, memoryLimitBytes } = setup;
  const dataParallel = predictDataParallel(net, devices, batch, profile, memoryLimitBytes);
  if (values.json) {
    console.log(JSON.stringify({
      ok: true,
      model: net.name, input: `${net.input.height}x${net.input.width}`, layers: net.layers.length, devices, batch,
      profile: profile.name, workers: profile.compute.workers, memoryLimitBytes,
      best: candidateJson(result.best),
      runnerUps: result.runnerUps.map(candidateJson),
      dataParallel: dataParallel && dataParallelJson(dataParallel),
      search: { gridsConsidered: result.gridsConsidered, gridsSearched: result.gridsSearched, planEvaluations: result.planEvaluations, memoryEvaluations: result.memoryEvaluations, seconds },
    }));
  } else printText(net, devices, batch, memoryLimitBytes, profile, result, seconds, dataParallel);
  return 0;
}
