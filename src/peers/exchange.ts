// The only way tiles on different devices talk: strips addressed by (step, phase, group, from, to) and a
// sum all-reduce. Payloads are never handed around as owned arrays: the sender gathers straight into
// the transport's buffer and the receiver scatters straight out of the transport's view, so a strip
// costs one copy on each side whatever the transport (in-memory or uWebSockets.js).

import type { StripPhaseName } from '../tiles/plan.js';
import type { Region } from '../tiles/region.js';

/** halo/recompute/grad run between tiles; output (tile -> head) and outgrad (head -> tile) carry the front's output and its gradient. */
export type StripPhase = StripPhaseName;

export interface StripAddress {
  readonly step: number;
  readonly phase: StripPhase;
  /** Forward group index for halo strips, backward group index for recompute and gradient strips, 0 for output and outgrad. */
  readonly group: number;
  /** Tile indices; the head is the pseudo tile plan.tiles. */
  readonly from: number;
  readonly to: number;
}

/**
 * A transport may cut a strip into bands of whole rows (to bound message sizes). `band` is the part
 * of the strip's region that `target`/`source` hold, laid out [batch, rows, cols, channels].
 */
export type Gather = (target: Float32Array, band: Region) => void;
/** Consumes `source` synchronously: the view is only valid during the call. */
export type Scatter = (source: Float32Array, band: Region) => void;

export interface Exchange {
  readonly rank: number;
  readonly size: number;
  /** `floats` is the size of the whole region (batch x rows x cols x channels). */
  sendStrip(address: StripAddress, region: Region, floats: number, gather: Gather): void;
  /** Resolves once every band of the strip sent to `address` has been passed to `scatter`. */
  expectStrip(address: StripAddress, region: Region, floats: number, scatter: Scatter): Promise<void>;
  /** Sums `values` element-wise over all devices, in place; the result is bit-identical on every device. */
  allReduceSum(key: string, values: Float32Array): Promise<void>;
}

export function stripKey(a: StripAddress): string {
  return `${a.step}/${a.phase}/${a.group}/${a.from}>${a.to}`;
}
