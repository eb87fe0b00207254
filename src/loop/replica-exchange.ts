// What one data-parallel replica's step talks to: its own one-device tile plan keeps its strips (to
// and from the head pseudo tile) on this device, while every sum goes to the whole cluster, so the
// weight gradients, the loss and the checksums add up over all replicas.
import { createInMemoryCluster } from '../peers/in-memory.js';
import type { Exchange, Gather, Scatter, StripAddress } from '../peers/exchange.js';
import type { Region } from '../tiles/region.js';
import { type TilePlan, stripEndpoints } from '../tiles/plan.js';

export class ReplicaExchange implements Exchange {
  readonly rank = 0;
  readonly size = 1;
  private readonly local: Exchange;

  constructor(plan: TilePlan, private readonly cluster: Exchange) {
    this.local = createInMemoryCluster(1, stripEndpoints(plan))[0]!;
  }

  sendStrip(address: StripAddress, region: Region, floats: number, gather: Gather): void {
    this.local.sendStrip(address, region, floats, gather);
  }

  expectStrip(address: StripAddress, region: Region, floats: number, scatter: Scatter): Promise<void> {
    return this.local.expectStrip(address, region, floats, scatter);
  }

  allReduceSum(key: string, values: Float32Array): Promise<void> {
    return this.cluster.allReduceSum(key, values);
  }
}
