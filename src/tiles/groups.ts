// Groupings: runs of consecutive layers computed without communication.

export interface LayerGroup {
  readonly first: number;
  readonly last: number;
}

/**
 * `each` (a group per layer), `all` (one group), or comma-separated start layers ("0,8,10").
 * Layer 0 always starts a group, so "8,10" means "0,8,10".
 */
export function parseGrouping(text: string, layerCount: number): LayerGroup[] {
  const spec = text.trim().toLowerCase();
  let starts: number[];
  if (spec === 'each') starts = Array.from({ length: layerCount }, (_, i) => i);
  else if (spec === 'all') starts = [0];
  else {
    starts = spec.split(',').map((part) => {
      if (!/^\d+$/.test(part.trim())) throw new Error(`grouping "${text}": "${part}" is not a layer index (use each, all or e.g. 0,8,10)`);
      const index = Number(part);
      if (index >= layerCount) throw new Error(`grouping "${text}": layer ${index} is out of range 0..${layerCount - 1}`);
      return index;
    });
    starts.forEach((s, i) => {
      if (i > 0 && s <= starts[i - 1]!) throw new Error(`grouping "${text}": start layers must increase, ${s} follows ${starts[i - 1]}`);
    });
    if (starts[0] !== 0) starts.unshift(0);
  }
  return starts.map((first, i) => ({ first, last: (starts[i + 1] ?? layerCount) - 1 }));
}

export function formatGrouping(groups: readonly LayerGroup[]): string {
  return groups.map((g) => g.first).join(',');
}
