// The strips of one device's tiles at each exchange point of a step: forward halos and recompute
// inputs assembled from the owners' cores, and partial gradients sent to their owners and added.
// Geometry comes from the plan (exchangeRegions); bytes move only through the Exchange.
import type { Exchange } from '../peers/exchange.js';
import { type RegionLayout, copySubRegion, layoutLength } from '../tiles/layout.js';
import { type TilePhase, type TilePlan, exchangeRegions, exchangeStrips } from '../tiles/plan.js';
import { type Region, intersectRegions, isEmptyRegion, sameRegion } from '../tiles/region.js';

type Take = (from: number, part: Region, band: Region, data: Float32Array) => void;

export class TileExchange {
  /** Milliseconds spent gathering and handing strips to the exchange (the send phase). */
  sendMs = 0;

  constructor(
    private readonly plan: TilePlan,
    private readonly exchange: Exchange,
    private readonly step: number,
  ) {}

  private layout(map: number, region: Region): RegionLayout {
    return { region, batch: this.plan.batch, channels: this.plan.maps[map]!.channels };
  }

  /**
   * One exchange point for one tile, in two halves. `expectParts` registers, ahead of time, every
   * part source(from) ∩ wanted(me) that other tiles will send, so strips that arrive early are
   * scattered straight into place instead of being stashed (a second copy). Parts may arrive in
   * bands of rows: `band` is the sub-region that `data` holds.
   */
  private expectParts(phase: TilePhase, group: number, tile: number, take: Take): Promise<void> {
    const { map, strips } = exchangeStrips(this.plan, phase, group);
    const arrivals = strips
      .filter((s) => s.to === tile && s.from !== tile)
      .map(({ from, region }) => {
        const address = { step: this.step, phase, group, from, to: tile };
        return this.exchange.expectStrip(address, region, layoutLength(this.layout(map, region)), (strip, band) => take(from, region, band, strip));
      });
    const all = Promise.all(arrivals).then(() => undefined);
    all.catch(() => undefined); // awaited later; a peer failure must not surface as unhandled meanwhile
    return all;
  }

  /** Sends source(me) ∩ wanted(to) to every other tile, gathered straight from `mine`. */
  private sendParts(phase: TilePhase, group: number, tile: number, mine: Float32Array): void {
    const started = performance.now();
    const { map, strips } = exchangeStrips(this.plan, phase, group);
    const mySource = this.layout(map, exchangeRegions(this.plan, phase, group).source(tile));
    for (const { to, region } of strips.filter((s) => s.from === tile && s.to !== tile)) {
      this.exchange.sendStrip({ step: this.step, phase, group, from: tile, to }, region, layoutLength(this.layout(map, region)), (target, band) =>
        copySubRegion(mine, mySource, target, this.layout(map, band), band));
    }
    this.sendMs += performance.now() - started;
  }

  /**
   * Get ready to assemble, in `target`, the extended region this tile wants from the owners' cores.
   * The returned function sends this tile's core to the others, copies its own part, and resolves
   * once every other part has landed.
   */
  openHalo(phase: 'halo' | 'recompute', group: number, tile: number, target: Float32Array): (core: Float32Array) => Promise<void> {
    const { map, source, wanted } = exchangeRegions(this.plan, phase, group);
    const targetLayout = this.layout(map, wanted(tile));
    const arrivals = this.expectParts(phase, group, tile, (_from, _part, band, data) => copySubRegion(data, this.layout(map, band), target, targetLayout, band));
    return async (core) => {
      this.sendParts(phase, group, tile, core);
      const own = intersectRegions(source(tile), wanted(tile));
      if (!isEmptyRegion(own)) copySubRegion(core, this.layout(map, source(tile)), target, targetLayout, own);
      await arrivals;
    };
  }

  /**
   * The adjoint of openHalo: partial gradients go to their owners and are added there. Each other
   * tile's strip lands in its own slot (`slot(from)`, laid out over that strip's region); the
   * returned function sends this tile's partial and, once every strip is in, writes into `sum` the
   * tile's own part, then adds the slots in tile order, so the rounding does not depend on arrival
   * order. The own part covers the core, so it is copied rather than added to zeros (a JS add loop
   * over the whole core was a tenth of the speed of the copy).
   */
  openGradient(group: number, tile: number, slot: (from: number) => Float32Array): (partial: Float32Array, sum: Float32Array) => Promise<void> {
    const { map, source, wanted } = exchangeRegions(this.plan, 'grad', group);
    const arrivals = this.expectParts('grad', group, tile, (from, part, band, data) =>
      copySubRegion(data, this.layout(map, band), slot(from), this.layout(map, part), band));
    const parts = exchangeStrips(this.plan, 'grad', group).strips.filter((s) => s.to === tile).sort((a, b) => a.from - b.from);
    const own = parts.find((s) => s.from === tile);
    const others = parts.filter((s) => s.from !== tile);
    return async (partial, sum) => {
      this.sendParts('grad', group, tile, partial);
      await arrivals;
      const myCore = this.layout(map, wanted(tile));
      const ownLayout = this.layout(map, source(tile));
      if (own && sameRegion(own.region, myCore.region)) copySubRegion(partial, ownLayout, sum, myCore, own.region);
      else {
        sum.fill(0);
        if (own) copySubRegion(partial, ownLayout, sum, myCore, own.region, 'add');
      }
      for (const { from, region } of others) copySubRegion(slot(from), this.layout(map, region), sum, myCore, region, 'add');
    };
  }
}
