// Input distribution from the data-source device (the head): it decodes the batch and sends every
// tile the part of the input map the tile reads during the step (phase `input`); each device keeps
// one buffer per local tile, allocated once, from which the step reads its input regions. The head's
// own tiles take their parts by a copy.
import type { Exchange } from '../peers/exchange.js';
import { type RegionLayout, copySubRegion, layoutLength } from '../tiles/layout.js';
import { HEAD_RANK, type TilePlan, headTile, tileInputRegion, tilesOfDevice } from '../tiles/plan.js';
import { type Region, wholeMap } from '../tiles/region.js';

export class InputExchange {
  private readonly whole: RegionLayout;
  private readonly buffers = new Map<number, { layout: RegionLayout; data: Float32Array }>();

  constructor(
    private readonly plan: TilePlan,
    private readonly exchange: Exchange,
  ) {
    if (plan.tail.length === 0) throw new Error('input distribution needs the head, which exists only for a model with a tail');
    const input = plan.maps[0]!;
    this.whole = { region: wholeMap(input.height, input.width), batch: plan.batch, channels: input.channels };
    for (const tile of tilesOfDevice(plan, exchange.rank)) {
      const layout = { ...this.whole, region: tileInputRegion(plan, tile) };
      this.buffers.set(tile, { layout, data: new Float32Array(layoutLength(layout)) });
    }
  }

  private address(step: number, tile: number) {
    return { step, phase: 'input' as const, group: 0, from: headTile(this.plan), to: tile };
  }

  /**
   * Every device, at step start. The head passes the batch's images ([batch, H, W, C]) and sends
   * every other device's tiles their regions; the others pass null and wait for theirs.
   */
  async distribute(step: number, images: Float32Array | null): Promise<void> {
    const isHead = this.exchange.rank === HEAD_RANK;
    if (isHead !== (images !== null)) throw new Error(`rank ${this.exchange.rank} ${isHead ? 'is the head and must pass the batch' : 'is not the head and must not load the batch'}`);
    if (!isHead) {
      await Promise.all([...this.buffers].map(([tile, buffer]) =>
        this.exchange.expectStrip(this.address(step, tile), buffer.layout.region, buffer.data.length, (data, band) =>
          copySubRegion(data, { ...this.whole, region: band }, buffer.data, buffer.layout, band))));
      return;
    }
    if (images!.length !== layoutLength(this.whole)) throw new Error(`the batch holds ${images!.length} floats, the input map needs ${layoutLength(this.whole)}`);
    this.plan.tileDevice.forEach((device, tile) => {
      if (device === HEAD_RANK) return;
      const region = tileInputRegion(this.plan, tile);
      this.exchange.sendStrip(this.address(step, tile), region, layoutLength({ ...this.whole, region }), (target, band) =>
        copySubRegion(images!, this.whole, target, { ...this.whole, region: band }, band));
    });
    for (const [, buffer] of this.buffers) copySubRegion(images!, this.whole, buffer.data, buffer.layout, buffer.layout.region);
  }

  /** The step's input over `region` (within the tile's input region) into `target`. */
  input(tile: number, region: Region, target: Float32Array): void {
    const buffer = this.buffers.get(tile);
    if (!buffer) throw new Error(`tile ${tile} does not live on rank ${this.exchange.rank}`);
    copySubRegion(buffer.data, buffer.layout, target, { ...this.whole, region }, region);
  }
}
