// Which parts of which tile's region go to which other tile. Forward halos: the intersection of the
// sender's core with the receiver's extended region. Gradient halos (the adjoint): the intersection of
// the sender's partial-gradient region with the receiver's core. Halos wider than a tile simply
// intersect more tiles, so every pair is considered, not only 8 neighbours.
import { type Region, intersectRegions, isEmptyRegion } from './region.js';

export interface Strip {
  readonly from: number;
  readonly to: number;
  readonly region: Region;
}

export function overlapStrips(tiles: number, sourceRegion: (tile: number) => Region, targetRegion: (tile: number) => Region): Strip[] {
  const strips: Strip[] = [];
  for (let from = 0; from < tiles; from++) {
    const source = sourceRegion(from);
    for (let to = 0; to < tiles; to++) {
      const region = intersectRegions(source, targetRegion(to));
      if (!isEmptyRegion(region)) strips.push({ from, to, region });
    }
  }
  return strips;
}
