// The train command's `auto` grid and groupings: the planner's choice for this cluster, logged.
// Deterministic, so every device derives the same plan from the same flags and profile.
import { NoPlanFitsError } from '../grouping/planner.js';
import { parseByteSize } from '../memory/estimate.js';
import type { Network } from '../model/layers.js';
import type { Grid } from '../tiles/grid.js';
import type { LayerGroup } from '../tiles/groups.js';
import { describeCandidate, planFromFlags } from './auto-plan.js';
import { loadProfileOption } from './profile-option.js';
import { UsageError, asUsage, parseNonNegativeInt } from './usage-error.js';

export interface TrainPlanFlags {
  readonly net: Network;
  readonly devices: number;
  readonly batch: number;
  readonly rank: number;
  readonly memoryLimit: string;
  readonly profile: string | undefined;
  /** --workers as given (the train command computes with 1 worker when absent). */
  readonly workers: string | undefined;
  readonly grid: string;
  readonly forward: string;
  readonly backward: string;
}

export interface ChosenPlan {
  readonly grid: Grid;
  readonly forwardGroups: readonly LayerGroup[];
  readonly backwardGroups: readonly LayerGroup[];
}

export function choosePlan(flags: TrainPlanFlags): ChosenPlan {
  // --workers 0 computes on the main thread: one compute thread, as the planner models it.
  const workers = Math.max(1, flags.workers === undefined ? 1 : parseNonNegativeInt('--workers', flags.workers));
  const profile = loadProfileOption(flags.profile, workers);
  const started = performance.now();
  try {
    const result = planFromFlags({
      net: flags.net, devices: flags.devices, batch: flags.batch, profile,
      memoryLimitBytes: asUsage(() => parseByteSize(flags.memoryLimit)),
      grid: flags.grid, forward: flags.forward, backward: flags.backward,
    });
    const seconds = (performance.now() - started) / 1000;
    console.error(`[rank ${flags.rank}] planner (profile ${profile.name}, ${workers} worker${workers > 1 ? 's' : ''}, ${seconds.toFixed(1)} s): ${describeCandidate(result.best)}`);
    return { grid: result.best.grid, forwardGroups: result.best.forward, backwardGroups: result.best.backward };
  } catch (error) {
    if (error instanceof NoPlanFitsError) throw new UsageError(error.message);
    throw error;
  }
}
