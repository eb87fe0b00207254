// The R x C grid of tiles and the core region each tile owns on every map.
import type { MapShape } from '../model/layers.js';
import { type Region, type Span, region, span } from './region.js';

export interface Grid {
  readonly rows: number;
  readonly cols: number;
}

export const tileCount = (grid: Grid): number => grid.rows * grid.cols;
export const tileRow = (grid: Grid, tile: number): number => Math.floor(tile / grid.cols);
export const tileCol = (grid: Grid, tile: number): number => tile % grid.cols;

export function parseGrid(text: string): Grid {
  const match = /^(\d+)x(\d+)$/i.exec(text.trim());
  if (!match) throw new Error(`grid must look like RxC (for example 2x2), got "${text}"`);
  const rows = Number(match[1]);
  const cols = Number(match[2]);
  if (rows < 1 || cols < 1) throw new Error(`grid needs at least one row and one column, got "${text}"`);
  return { rows, cols };
}

/** Span i of n positions split into `parts` contiguous spans whose lengths differ by at most one. */
export const balancedSpan = (n: number, parts: number, i: number): Span => span(Math.floor((i * n) / parts), Math.floor(((i + 1) * n) / parts));

/** Split n positions into `parts` contiguous spans whose lengths differ by at most one. */
export function balancedSpans(n: number, parts: number): Span[] {
  return Array.from({ length: parts }, (_, i) => balancedSpan(n, parts, i));
}

/** The core of `tile` on a map: the cores of all tiles partition the map exactly. */
export function coreRegion(grid: Grid, map: MapShape, tile: number): Region {
  // One span, not the whole split: region math calls this for every pair of tiles.
  return region(balancedSpan(map.height, grid.rows, tileRow(grid, tile)), balancedSpan(map.width, grid.cols, tileCol(grid, tile)));
}

/** Every map must give every tile at least one row and column. */
export function checkGridFits(grid: Grid, maps: readonly MapShape[]): void {
  maps.forEach((map, index) => {
    if (map.height < grid.rows || map.width < grid.cols) {
      throw new Error(
        `grid ${grid.rows}x${grid.cols} is larger than map ${index} (${map.height}x${map.width}); ` +
          `use at most ${Math.min(...maps.map((m) => m.height))}x${Math.min(...maps.map((m) => m.width))}`,
      );
    }
  });
}
