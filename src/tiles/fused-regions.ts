// Regions a tile works on through a fused run of layers: walk back from the region it must produce
// at the run's output map to the extended region it needs at the run's input map.
import type { FrontLayer, MapShape } from '../model/layers.js';
import { type Region, type Span, intersectRegions, wholeMap } from './region.js';

/** Input positions that output positions [start, end) of the layer read, before clipping to the map. */
export function inputSpan(layer: FrontLayer, out: Span): Span {
  if (out.end <= out.start) return { start: 0, end: 0 };
  return {
    start: out.start * layer.stride - layer.padBefore,
    end: (out.end - 1) * layer.stride - layer.padBefore + layer.size,
  };
}

export function inputRegion(layer: FrontLayer, out: Region): Region {
  return { rows: inputSpan(layer, out.rows), cols: inputSpan(layer, out.cols) };
}

export interface FusedRegions {
  readonly firstLayer: number;
  readonly lastLayer: number;
  /** Clipped region held at map m, for m = firstLayer .. lastLayer + 1 (indexed by m - firstLayer). */
  readonly held: readonly Region[];
  /** Unclipped input region layer l reads (held region plus padding), indexed by l - firstLayer. */
  readonly read: readonly Region[];
}

/**
 * For the layers first..last, the regions needed so that the output map last+1 is produced exactly
 * over `outputRegion`. Positions outside a map are padding (materialised, never exchanged).
 */
export function fusedRegions(
  layers: readonly FrontLayer[],
  maps: readonly MapShape[],
  firstLayer: number,
  lastLayer: number,
  outputRegion: Region,
): FusedRegions {
  const held: Region[] = [outputRegion];
  const read: Region[] = [];
  for (let l = lastLayer; l >= firstLayer; l--) {
    const needed = inputRegion(layers[l]!, held[0]!);
    read.unshift(needed);
    const map = maps[l]!;
    held.unshift(intersectRegions(needed, wholeMap(map.height, map.width)));
  }
  return { firstLayer, lastLayer, held, read };
}

export const heldAt = (f: FusedRegions, map: number): Region => {
  const r = f.held[map - f.firstLayer];
  if (!r) throw new Error(`map ${map} is outside the fused run ${f.firstLayer}..${f.lastLayer + 1}`);
  return r;
};
