// The strips of one device's tiles at each exchange point of a step: forward halos and recompute
// inputs assembled from the owners' cores, and partial gradients sent to their owners and added.
// Geometry comes from the plan (exchangeRegions); bytes move only through the Exchange.
import type { Exchange } from '../peers/exchange.js';
import { type RegionLayout, copySubRegion, extractSubRegion, layoutLength } from '../tiles/layout.js';
import { type TilePhase, type TilePlan, exchangeRegions, exchangeStrips } from '../tiles/plan.js';
import type { Region } from '../tiles/region.js';

type Take = (from: number, part: Region, band: Region, data: Float32Array) => void;

export class TileExchange {
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
   * scattered straight into place instead of being stashed (a second copy); `sendParts` sends
   * source(me) ∩ wanted(to) to every other tile and hands my own part to `take`. Parts may arrive in
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

  private sendParts(phase: TilePhase, group: number, tile: number, mine: Float32Array, take: Take): void {
    const { map, strips } = exchangeStrips(this.plan, phase, group);
    const mySource = this.layout(map, exchangeRegions(this.plan, phase, group).source(tile));
    for (const { to, region } of strips.filter((s) => s.from === tile)) {
      if (to === tile) take(tile, region, region, extractSubRegion(mine, mySource, region));
      else {
        this.exchange.sendStrip({ step: this.step, phase, group, from: tile, to }, region, layoutLength(this.layout(map, region)), (target, band) =>
          copySubRegion(mine, mySource, target, this.layout(map, band), band));
      }
    }
  }

  /** Get ready to assemble the extended region this tile wants from the owners' cores. */
  openHalo(phase: 'halo' | 'recompute', group: number, tile: number): (core: Float32Array) => Promise<Float32Array> {
    const { map, wanted } = exchangeRegions(this.plan, phase, group);
    const target = this.layout(map, wanted(tile));
    const assembled = new Float32Array(layoutLength(target));
    const take: Take = (_from, _part, band, data) => copySubRegion(data, this.layout(map, band), assembled, target, band);
    const arrivals = this.expectParts(phase, group, tile, take);
    return async (core) => {
      this.sendParts(phase, group, tile, core, take);
      await arrivals;
      return assembled;
    };
  }

  /** The adjoint of openHalo: partial gradients go to their owners and are added there. */
  openGradient(group: number, tile: number): (partial: Float32Array) => Promise<Float32Array> {
    const { map, wanted } = exchangeRegions(this.plan, 'grad', group);
    // Each source lands in its own slot; slots are summed in tile order afterwards so the rounding
    // of the sum does not depend on arrival order.
    const slots = new Map<number, { part: Region; data: Float32Array }>();
    const take: Take = (from, part, band, data) => {
      let slot = slots.get(from);
      if (!slot) slots.set(from, (slot = { part, data: new Float32Array(layoutLength(this.layout(map, part))) }));
      copySubRegion(data, this.layout(map, band), slot.data, this.layout(map, part), band);
    };
    const arrivals = this.expectParts('grad', group, tile, take);
    return async (partial) => {
      this.sendParts('grad', group, tile, partial, take);
      await arrivals;
      const myCore = this.layout(map, wanted(tile));
      const sum = new Float32Array(layoutLength(myCore));
      for (const from of [...slots.keys()].sort((x, y) => x - y)) {
        const slot = slots.get(from)!;
        copySubRegion(slot.data, this.layout(map, slot.part), sum, myCore, slot.part, 'add');
      }
      return sum;
    };
  }

}
