// Grid and grouping flags that may say `auto`: the planner chooses what is auto and keeps the rest.
// Shared by `edge plan` and the train command's `--grid auto`, `--forward-groups auto`,
// `--backward-groups auto`.
import { type PlanCandidate, type PlanResult, NoPlanFitsError, planGroupings } from '../grouping/planner.js';
import type { DeviceProfile } from '../grouping/profile.js';
import { formatBytes } from '../memory/estimate.js';
import type { Network } from '../model/layers.js';
import { parseGrid } from '../tiles/grid.js';
import { formatGrouping, parseGrouping } from '../tiles/groups.js';
import { UsageError, asUsage } from './usage-error.js';

export const isAuto = (text: string | undefined): boolean => text?.trim().toLowerCase() === 'auto';

export interface AutoPlanFlags {
  readonly net: Network;
  readonly devices: number;
  readonly batch: number;
  readonly memoryLimitBytes: number;
  readonly profile: DeviceProfile;
  /** RxC or auto. */
  readonly grid: string;
  /** A grouping or auto. */
  readonly forward: string;
  readonly backward: string;
  readonly maxTiles?: number;
}

/** Runs the planner with every non-auto flag fixed. Throws NoPlanFitsError when nothing fits, UsageError on bad flags. */
export function planFromFlags(flags: AutoPlanFlags): PlanResult {
  const layers = flags.net.layers.length;
  const request = asUsage(() => ({
    net: flags.net,
    devices: flags.devices,
    batch: flags.batch,
    memoryLimitBytes: flags.memoryLimitBytes,
    profile: flags.profile,
    ...(isAuto(flags.grid) ? {} : { grid: parseGrid(flags.grid) }),
    fixed: {
      ...(isAuto(flags.forward) ? {} : { forward: parseGrouping(flags.forward, layers) }),
      ...(isAuto(flags.backward) ? {} : { backward: parseGrouping(flags.backward, layers) }),
    },
    ...(flags.maxTiles !== undefined ? { maxTiles: flags.maxTiles } : {}),
  }));
  try {
    return planGroupings(request);
  } catch (error) {
    if (error instanceof NoPlanFitsError) throw error;
    throw new UsageError((error as Error).message);
  }
}

/** One line: grid, groupings, predicted time and memory. */
export function describeCandidate(c: PlanCandidate): string {
  const t = c.time;
  return `grid ${c.grid.rows}x${c.grid.cols}, forward ${formatGrouping(c.forward)}, backward ${formatGrouping(c.backward)}: ` +
    `${t.stepSeconds.toFixed(2)} s per step (compute ${t.computeSeconds.toFixed(2)}, exchange ${t.exchangeSeconds.toFixed(2)}, reduce ${t.reduceSeconds.toFixed(2)}), ` +
    `peak ${formatBytes(c.memory.peakBytes)} per device`;
}
