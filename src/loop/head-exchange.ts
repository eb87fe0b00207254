// The strips between the tiles and the head in one step: every tile's core of the front's output goes
// to the head (phase `output`), which assembles the whole map, and the loss gradient over each core
// comes back (phase `outgrad`). Tiles on the head's own device skip the transport: their core is
// copied into the map once and their gradient copied out once.
import type { Exchange } from '../peers/exchange.js';
import { type RegionLayout, copySubRegion, extractSubRegion, layoutLength } from '../tiles/layout.js';
import { HEAD_RANK, type TilePlan, headTile, planCore } from '../tiles/plan.js';
import { type Region, wholeMap } from '../tiles/region.js';

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined); // awaited later; a failure must not surface as unhandled meanwhile
  return { promise, resolve, reject };
}

export class HeadExchange {
  private readonly map: number;
  private readonly whole: RegionLayout;
  private readonly isHead: boolean;
  /** Head only: the assembled output map, its local tiles' arrivals, and the gradient once known. */
  private readonly assembled: Float32Array | null = null;
  private readonly localArrivals = new Map<number, Deferred<void>>();
  private readonly remoteArrivals: Promise<unknown> = Promise.resolve();
  private readonly gradient = deferred<Float32Array>();

  /** Build at step start on every device: the head then registers every remote core before any is sent. */
  constructor(
    private readonly plan: TilePlan,
    private readonly exchange: Exchange,
    private readonly step: number,
  ) {
    if (plan.tail.length === 0) throw new Error('the plan has no tail: nothing goes to the head');
    this.map = plan.net.layers.length;
    const shape = plan.maps[this.map]!;
    this.whole = { region: wholeMap(shape.height, shape.width), batch: plan.batch, channels: shape.channels };
    this.isHead = exchange.rank === HEAD_RANK;
    if (!this.isHead) return;
    const assembled = new Float32Array(layoutLength(this.whole));
    this.assembled = assembled;
    const arrivals: Promise<void>[] = [];
    plan.tileDevice.forEach((device, tile) => {
      if (device === HEAD_RANK) {
        this.localArrivals.set(tile, deferred<void>());
        return;
      }
      const core = planCore(plan, this.map, tile);
      arrivals.push(exchange.expectStrip(this.address('output', tile, headTile(plan)), core, layoutLength(this.layout(core)), (data, band) =>
        copySubRegion(data, this.layout(band), assembled, this.whole, band)));
    });
    this.remoteArrivals = Promise.all(arrivals);
    this.remoteArrivals.catch(() => undefined);
  }

  private address(phase: 'output' | 'outgrad', from: number, to: number) {
    return { step: this.step, phase, group: 0, from, to };
  }

  private layout(region: Region): RegionLayout {
    return { ...this.whole, region };
  }

  /** Every device, per local tile: hands over its core of the front's output, resolves with the loss gradient over that core. */
  async exchangeTile(tile: number, output: Float32Array): Promise<Float32Array> {
    const core = planCore(this.plan, this.map, tile);
    const coreLayout = this.layout(core);
    if (this.isHead) {
      const arrived = this.localArrivals.get(tile);
      if (!arrived) throw new Error(`tile ${tile} does not live on the head (rank ${HEAD_RANK})`);
      copySubRegion(output, coreLayout, this.assembled!, this.whole, core);
      arrived.resolve();
      return extractSubRegion(await this.gradient.promise, this.whole, core);
    }
    const head = headTile(this.plan);
    const gradient = new Float32Array(layoutLength(coreLayout));
    // Expected before the output leaves, so the reply always lands in place.
    const replied = this.exchange.expectStrip(this.address('outgrad', head, tile), core, gradient.length, (data, band) =>
      copySubRegion(data, this.layout(band), gradient, coreLayout, band));
    this.exchange.sendStrip(this.address('output', tile, head), core, gradient.length, (target, band) =>
      copySubRegion(output, coreLayout, target, this.layout(band), band));
    await replied;
    return gradient;
  }

  /** Head only: the whole output map [batch, H, W, C], once every tile's core is in. */
  async gathered(): Promise<Float32Array> {
    if (!this.isHead) throw new Error(`only the head (rank ${HEAD_RANK}) gathers the front's output`);
    await Promise.all([this.remoteArrivals, ...[...this.localArrivals.values()].map((d) => d.promise)]);
    return this.assembled!;
  }

  /** Head only: sends every remote tile its core of `gradient` (the whole map) and releases local tiles. */
  scatter(gradient: Float32Array): void {
    if (!this.isHead) throw new Error(`only the head (rank ${HEAD_RANK}) scatters the output gradient`);
    if (gradient.length !== layoutLength(this.whole)) throw new Error(`the output gradient holds ${gradient.length} floats, the output map ${layoutLength(this.whole)}`);
    const head = headTile(this.plan);
    this.plan.tileDevice.forEach((device, tile) => {
      if (device === HEAD_RANK) return;
      const core = planCore(this.plan, this.map, tile);
      this.exchange.sendStrip(this.address('outgrad', head, tile), core, layoutLength(this.layout(core)), (target, band) =>
        copySubRegion(gradient, this.whole, target, this.layout(band), band));
    });
    this.gradient.resolve(gradient);
  }

  /** Head only: the tail failed; local tiles waiting for their gradient get the error. */
  fail(error: Error): void {
    this.gradient.reject(error);
  }
}
