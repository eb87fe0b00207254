// The plan's per-device memory prediction, before anything is allocated: what the step keeps alive
// at its peak (every forward stash of the device's tiles, held until backward), the parameters with
// their gradients and momentum, the largest transient of one layer, and the runtime measured at start.
import type { TilePlan } from '../tiles/plan.js';
import { tilesOfDevice } from '../tiles/plan.js';
import { regionArea } from '../tiles/region.js';

export interface MemoryEstimate {
  readonly rows: readonly { readonly what: string; readonly bytes: number }[];
  readonly totalBytes: number;
}

const FLOAT = 4;
/** The im2col chunk of the wasm filter-gradient kernel plus its packed copy inside XNNPACK. */
const KERNEL_SCRATCH_BYTES = 2 * (16 << 20);

export function estimateDeviceMemory(plan: TilePlan, rank: number, runtimeBytes: number): MemoryEstimate {
  const tiles = tilesOfDevice(plan, rank);
  let stash = 0;
  let largestLayer = 0;
  plan.forward.forEach((group) => {
    for (const tile of tiles) {
      const regions = group[tile]!;
      // The group's input and every layer's output stay for backward (each layer's input is the
      // previous output); BN layers also keep the pre-norm output.
      stash += plan.batch * regionArea(regions.held[0]!) * plan.maps[regions.firstLayer]!.channels * FLOAT;
      for (let l = regions.firstLayer; l <= regions.lastLayer; l++) {
        const i = l - regions.firstLayer;
        const layer = plan.net.layers[l]!;
        const paddedBytes = plan.batch * regionArea(regions.read[i]!) * plan.maps[l]!.channels * FLOAT;
        const outBytes = plan.batch * regionArea(regions.held[i + 1]!) * plan.maps[l + 1]!.channels * FLOAT;
        stash += outBytes * (layer.kind === 'conv' && layer.batchNormalize ? 2 : 1);
        // Backward of one layer holds the re-padded input and its gradient, dy, the activation
        // gradient with its two temporaries, and the conv gradient.
        largestLayer = Math.max(largestLayer, 2 * paddedBytes + 4 * outBytes);
      }
    }
  });
  let parameters = 0;
  plan.net.layers.forEach((layer, l) => {
    if (layer.kind !== 'conv') return;
    const count = layer.size * layer.size * plan.maps[l]!.channels * layer.filters + layer.filters * (layer.batchNormalize ? 4 : 1);
    // Values, tensor copy, gradient, momentum.
    parameters += 4 * count * FLOAT;
  });
  const rows = [
    { what: 'forward stash of this device\'s tiles', bytes: stash },
    { what: 'largest layer transient (backward)', bytes: largestLayer },
    { what: 'kernel scratch (im2col)', bytes: KERNEL_SCRATCH_BYTES },
    { what: 'parameters, gradients, momentum', bytes: parameters },
    { what: 'runtime (Node, tfjs, wasm) measured at start', bytes: runtimeBytes },
  ];
  return { rows, totalBytes: rows.reduce((sum, r) => sum + r.bytes, 0) };
}

export function formatBytes(bytes: number): string {
  return bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(2)} GiB` : `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

export function formatEstimate(e: MemoryEstimate, limitBytes: number): string {
  const lines = e.rows.map((r) => `  ${r.what.padEnd(46)} ${formatBytes(r.bytes).padStart(11)}`);
  lines.push(`  ${'total'.padEnd(46)} ${formatBytes(e.totalBytes).padStart(11)}   (limit ${formatBytes(limitBytes)})`);
  return lines.join('\n');
}

/** "1G", "512M", "1.5GiB", "800000000" -> bytes. */
export function parseByteSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!match) throw new Error(`memory size must look like 1G, 512M or a byte count, got "${text}"`);
  const unit = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30 }[match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(match[1]) * unit);
}
