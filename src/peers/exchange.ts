// The only way tiles on different devices talk: strips addressed by (step, phase, map, from, to) and a
// sum all-reduce. The in-memory implementation serves one-process runs; the network one (uWebSockets.js)
// implements the same interface, so the math never changes with the transport.

export type StripPhase = 'halo' | 'recompute' | 'grad';

export interface StripAddress {
  readonly step: number;
  readonly phase: StripPhase;
  /** Map index (0 = network input, l + 1 = output of layer l). */
  readonly map: number;
  readonly from: number;
  readonly to: number;
}

export interface Exchange {
  readonly rank: number;
  readonly size: number;
  /** Hands `payload` to the transport; the caller must not modify it afterwards. */
  sendStrip(address: StripAddress, payload: Float32Array): void;
  /** Resolves with the payload sent to this address; each address is received once. */
  receiveStrip(address: StripAddress): Promise<Float32Array>;
  /** Sums `values` element-wise over all devices, in place; the result is bit-identical on every device. */
  allReduceSum(key: string, values: Float32Array): Promise<void>;
}

export function stripKey(a: StripAddress): string {
  return `${a.step}/${a.phase}/${a.map}/${a.from}>${a.to}`;
}
