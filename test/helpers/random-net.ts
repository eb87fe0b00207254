// Random small networks, grids and groupings for property tests, from a seeded generator.
import { CONSTANT_SCHEDULE, type FrontLayer, type Network, convLayer, mapShapes, maxpoolLayer } from '../../src/model/layers.js';
import { seededRandom } from '../../src/model/weights.js';
import type { Grid } from '../../src/tiles/grid.js';
import { CHEAP_STASH_FLOPS_PER_VALUE } from '../../src/tiles/plan.js';
import { type LayerGroup, parseGrouping } from '../../src/tiles/groups.js';

export type Random = () => number;
export const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
export const between = (random: Random, low: number, high: number): number => low + Math.floor(random() * (high - low + 1));

function randomLayer(random: Random): FrontLayer {
  if (random() < 0.3) {
    const [size, stride] = pick(random, [[2, 2], [3, 2], [3, 1]] as const);
    return maxpoolLayer(size, stride);
  }
  const size = pick(random, [1, 2, 3, 5]);
  const stride = pick(random, [1, 1, 2]);
  // Darknet's pad=1 (size/2 on each side) or an explicit padding below the kernel size.
  const pad = random() < 0.6 ? Math.floor(size / 2) : between(random, 0, size - 1);
  return convLayer(between(random, 1, 5), size, stride, {
    pad,
    activation: pick(random, ['leaky', 'leaky', 'relu', 'linear'] as const),
    batchNormalize: random() < 0.4,
  });
}

export interface RandomConfig {
  net: Network;
  grid: Grid;
  forwardGroups: LayerGroup[];
  backwardGroups: LayerGroup[];
  batch: number;
  devices: number;
  /** Keep every stash (0), the default rule, or a threshold that recomputes some layers' stashes and keeps others'. */
  recomputeStashFlops: number;
  describe: string;
}

export function randomGrouping(random: Random, layers: number): { text: string; groups: LayerGroup[] } {
  const kind = random();
  let text: string;
  if (kind < 0.2) text = 'each';
  else if (kind < 0.4) text = 'all';
  else {
    const starts = [0, ...Array.from({ length: layers - 1 }, (_, i) => i + 1).filter(() => random() < 0.4)];
    text = starts.join(',');
  }
  return { text, groups: parseGrouping(text, layers) };
}

/** A random network whose every map can hold the random grid. */
export function randomConfig(seed: number): RandomConfig {
  const random = seededRandom(seed);
  for (;;) {
    const layerCount = between(random, 1, 5);
    const height = between(random, 7, 28);
    const width = between(random, 7, 28);
    const layers = Array.from({ length: layerCount }, () => randomLayer(random));
    const net: Network = {
      name: `random-${seed}`,
      input: { height, width, channels: between(random, 1, 4) },
      layers,
      hyper: { batch: 1, learningRate: 0.01, momentum: 0.9, decay: 0.0005, schedule: CONSTANT_SCHEDULE },
    };
    let maps;
    try {
      maps = mapShapes(net);
    } catch {
      continue;
    }
    const smallest = Math.min(...maps.map((m) => Math.min(m.height, m.width)));
    if (smallest < 2) continue;
    const grid = { rows: between(random, 1, Math.min(4, smallest)), cols: between(random, 1, Math.min(4, smallest)) };
    const forward = randomGrouping(random, layerCount);
    const backward = random() < 0.5 ? forward : randomGrouping(random, layerCount);
    const tiles = grid.rows * grid.cols;
    const batch = between(random, 1, 2);
    const devices = between(random, 1, tiles);
    const stashRule = random();
    const recomputeStashFlops = stashRule < 1 / 3 ? 0 : stashRule < 2 / 3 ? CHEAP_STASH_FLOPS_PER_VALUE : between(random, 8, 160);
    const describe =
      `${height}x${width}x${net.input.channels} [${layers.map((l) => `${l.kind === 'conv' ? 'c' : 'm'}${l.size}/${l.stride}`).join(' ')}] ` +
      `grid ${grid.rows}x${grid.cols} fwd ${forward.text} bwd ${backward.text} batch ${batch} devices ${devices} recompute stashes <= ${recomputeStashFlops} FLOPs/value`;
    return { net, grid, forwardGroups: forward.groups, backwardGroups: backward.groups, batch, devices, recomputeStashFlops, describe };
  }
}
