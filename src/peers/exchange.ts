// The only way tiles on different devices talk: strips addressed by (step, phase, group, from, to) and a
// sum all-reduce. Payloads are never handed around as owned arrays: the sender gathers straight into
// the transport's buffer and the receiver scatters straight out of the transport's view, so a strip
// costs one copy on each side whatever the transport (in-memory or uWebSockets.js).

export type StripPhase = 'halo' | 'recompute' | 'grad';

export interface StripAddress {
  readonly step: number;
  readonly phase: StripPhase;
  /** Forward group index for halo strips, backward group index for recompute and gradient strips. */
  readonly group: number;
  readonly from: number;
  readonly to: number;
}

/** Fills `target` (exactly the strip's floats) from the sender's data. */
export type Gather = (target: Float32Array) => void;
/** Consumes `source` synchronously: the view is only valid during the call. */
export type Scatter = (source: Float32Array) => void;

export interface Exchange {
  readonly rank: number;
  readonly size: number;
  sendStrip(address: StripAddress, floats: number, gather: Gather): void;
  /** Resolves once the strip sent to `address` has been passed to `scatter`; each address is awaited once. */
  expectStrip(address: StripAddress, floats: number, scatter: Scatter): Promise<void>;
  /** Sums `values` element-wise over all devices, in place; the result is bit-identical on every device. */
  allReduceSum(key: string, values: Float32Array): Promise<void>;
}

export function stripKey(a: StripAddress): string {
  return `${a.step}/${a.phase}/${a.group}/${a.from}>${a.to}`;
}
