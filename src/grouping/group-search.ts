// The best forward and backward groupings on one grid under the tables' additive costs: a shortest
// path over layer boundaries. Walking the boundaries left to right, the state is (f, b, r): the
// start of the open forward group, the start of the open backward window, and the forward start the
// open window would recompute from. At each boundary a forward group and/or a backward window may
// close; a window that closes together with an identical forward group reuses its stash. A penalty
// of `lambda` seconds per byte on stashes kept from forward to backward trades time for memory.
import type { LayerGroup } from '../tiles/groups.js';
import type { GroupTables } from './group-tables.js';

export interface Grouping {
  readonly forward: readonly LayerGroup[];
  readonly backward: readonly LayerGroup[];
}

/** Groupings fixed by the caller (for example `--forward-groups 0,8` with `--backward-groups auto`). */
export interface FixedGroupings {
  readonly forward?: readonly LayerGroup[];
  readonly backward?: readonly LayerGroup[];
}

export function groupsFromStarts(starts: readonly number[], layers: number): LayerGroup[] {
  return starts.map((first, i) => ({ first, last: (starts[i + 1] ?? layers) - 1 }));
}

/** Whether a group may (or must) start at layer p: [false, true] when free. */
function choices(fixed: readonly LayerGroup[] | undefined, p: number): boolean[] {
  if (!fixed) return [false, true];
  return [fixed.some((g) => g.first === p)];
}

export interface SearchResult {
  readonly grouping: Grouping;
  /** Summed table cost plus the memory penalty. */
  readonly cost: number;
}

export function searchGroupings(tables: GroupTables, lambda: number, fixed: FixedGroupings = {}): SearchResult {
  const L = tables.layers;
  const states = L * L * L;
  const key = (f: number, b: number, r: number) => (f * L + b) * L + r;
  let cost = new Float64Array(states).fill(Infinity);
  cost[key(0, 0, 0)] = 0;
  // parents[p][state]: the previous state * 4 + (forward start at p ? 1 : 0) + (window start at p ? 2 : 0).
  const parents: Int32Array[] = [];

  const closeCost = (f: number, b: number, r: number, p: number, closeForward: boolean, closeWindow: boolean): number => {
    const reuse = closeForward && closeWindow && b === f;
    let add = 0;
    if (closeForward) add += tables.forward(f, p - 1) + (reuse ? lambda * tables.keptBytes(f, p - 1) : 0);
    if (closeWindow) add += tables.backward(b, p - 1, reuse ? b : r, reuse);
    return add;
  };

  for (let p = 1; p < L; p++) {
    const next = new Float64Array(states).fill(Infinity);
    const parent = new Int32Array(states).fill(-1);
    for (let s = 0; s < states; s++) {
      const here = cost[s]!;
      if (here === Infinity) continue;
      const f = Math.floor(s / (L * L));
      const b = Math.floor(s / L) % L;
      const r = s % L;
      for (const startForward of choices(fixed.forward, p)) {
        for (const startWindow of choices(fixed.backward, p)) {
          const total = here + closeCost(f, b, r, p, startForward, startWindow);
          const to = key(startForward ? p : f, startWindow ? p : b, startWindow ? (startForward ? p : f) : r);
          if (total < next[to]!) {
            next[to] = total;
            parent[to] = s * 4 + (startForward ? 1 : 0) + (startWindow ? 2 : 0);
          }
        }
      }
    }
    parents.push(parent);
    cost = next;
  }

  let best = -1;
  let bestCost = Infinity;
  for (let s = 0; s < states; s++) {
    if (cost[s] === Infinity) continue;
    const total = cost[s]! + closeCost(Math.floor(s / (L * L)), Math.floor(s / L) % L, s % L, L, true, true);
    if (total < bestCost) {
      bestCost = total;
      best = s;
    }
  }
  if (best < 0) throw new Error('no grouping satisfies the fixed groupings (an internal error: the fixed ones always do)');

  const forwardStarts = [0];
  const windowStarts = [0];
  for (let p = L - 1, s = best; p >= 1; p--) {
    const entry = parents[p - 1]![s]!;
    if (entry & 1) forwardStarts.push(p);
    if (entry & 2) windowStarts.push(p);
    s = Math.floor(entry / 4);
  }
  const sorted = (starts: number[]) => [...new Set(starts)].sort((x, y) => x - y);
  return {
    grouping: { forward: groupsFromStarts(sorted(forwardStarts), L), backward: groupsFromStarts(sorted(windowStarts), L) },
    cost: bestCost,
  };
}

/** The objective searchGroupings minimises, for one grouping: table costs plus the stash penalty. */
export function groupingCost(tables: GroupTables, grouping: Grouping, lambda = 0): number {
  let cost = 0;
  for (const g of grouping.forward) cost += tables.forward(g.first, g.last);
  for (const w of grouping.backward) {
    const reuse = grouping.forward.some((g) => g.first === w.first && g.last === w.last);
    const r = Math.max(...grouping.forward.filter((g) => g.first <= w.first).map((g) => g.first));
    cost += tables.backward(w.first, w.last, r, reuse) + (reuse ? lambda * tables.keptBytes(w.first, w.last) : 0);
  }
  return cost;
}
