// The data-parallel baseline as the planner sees it (`edge train --parallel data`): every device
// trains whole images, ceil(batch / devices) each, and the weight gradients are all-reduced over all
// devices. Not a tile plan the planner can pick (it changes the batch when the batch is not a
// multiple of the devices), but the comparison a user needs: where the all-reduce is cheap against
// the compute it saves, it beats every tile plan per image. Pure.
import type { Network } from '../model/layers.js';
import { parseGrouping } from '../tiles/groups.js';
import { buildTilePlan } from '../tiles/plan.js';
import { type MemoryPrediction, type StepPrediction, predictMemory, predictStep } from './cost.js';
import type { DeviceProfile } from './profile.js';

export interface DataParallelPrediction {
  /** Images per step: the smallest multiple of the devices that is at least the requested batch. */
  readonly batch: number;
  /** The 1x1 grouping every replica uses: the faster of `all` and `each` that fits. */
  readonly grouping: 'all' | 'each';
  readonly time: StepPrediction;
  readonly memory: MemoryPrediction;
  readonly secondsPerImage: number;
  readonly fits: boolean;
}

/** Null for one device (data parallelism needs two). */
export function predictDataParallel(net: Network, devices: number, batch: number, profile: DeviceProfile, memoryLimitBytes: number): DataParallelPrediction | null {
  if (devices < 2) return null;
  const perDevice = Math.ceil(batch / devices);
  const options = (['all', 'each'] as const).map((grouping) => {
    const groups = parseGrouping(grouping, net.layers.length);
    const plan = buildTilePlan({ net, grid: { rows: 1, cols: 1 }, devices: 1, replicas: devices, batch: perDevice, forwardGroups: groups, backwardGroups: groups });
    const time = predictStep(plan, profile);
    const memory = predictMemory(plan, profile);
    return { batch: perDevice * devices, grouping, time, memory, secondsPerImage: time.stepSeconds / (perDevice * devices), fits: memory.peakBytes <= memoryLimitBytes };
  });
  const fitting = options.filter((o) => o.fits);
  return [...(fitting.length > 0 ? fitting : options)].sort((a, b) => a.time.stepSeconds - b.time.stepSeconds)[0]!;
}
