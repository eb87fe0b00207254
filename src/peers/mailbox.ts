// Where received payloads meet their consumers. A consumer registered before its data arrives gets
// the message view scattered straight into place (one copy); data that arrives first is stashed as a
// copy (counted apart, as the early-arrival extra) up to a byte limit, and replayed when the
// consumer registers.
import { type Region, containsRegion, formatRegion, regionHeight } from '../tiles/region.js';
import type { TransportCounters } from './counters.js';

export interface Band {
  readonly region: Region;
  readonly data: Float32Array;
}

interface Expectation {
  /** The device the data comes from. */
  readonly sender: number;
  readonly region: Region;
  readonly floatsPerRow: number;
  remaining: number;
  readonly consume: (data: Float32Array, region: Region) => void;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export class Mailbox {
  private readonly expectations = new Map<string, Expectation>();
  private readonly early = new Map<string, Band[]>();
  private earlyBytes = 0;

  constructor(
    private readonly counters: TransportCounters,
    private readonly maxEarlyBytes: number,
  ) {}

  /** Register a consumer for `key`: `floats` over `region`, arriving in bands of whole rows. */
  expect(key: string, sender: number, region: Region, floats: number, consume: (data: Float32Array, band: Region) => void): Promise<void> {
    if (this.expectations.has(key)) return Promise.reject(new Error(`${key} is already awaited`));
    return new Promise((resolve, reject) => {
      const rows = Math.max(1, regionHeight(region));
      const e: Expectation = { sender, region, floatsPerRow: floats / rows, remaining: floats, consume, resolve, reject };
      this.expectations.set(key, e);
      const stashed = this.early.get(key);
      if (stashed) {
        this.early.delete(key);
        for (const band of stashed) {
          this.earlyBytes -= band.data.byteLength;
          const problem = this.deliver(key, e, band.data, band.region);
          if (problem) return this.fail(key, new Error(problem));
        }
      }
      if (floats === 0) this.finish(key, e);
    });
  }

  /** A received band. Returns a rejection reason, or null when it was taken. */
  receive(key: string, data: Float32Array, band: Region): string | null {
    const e = this.expectations.get(key);
    if (e) return this.deliver(key, e, data, band);
    if (this.earlyBytes + data.byteLength > this.maxEarlyBytes) return `overflow: ${key} arrived early and the early-message buffer is full`;
    const list = this.early.get(key) ?? [];
    list.push({ region: band, data: data.slice() });
    this.early.set(key, list);
    this.earlyBytes += data.byteLength;
    this.counters.stashedBytesReceiving += data.byteLength;
    return null;
  }

  private deliver(key: string, e: Expectation, data: Float32Array, band: Region): string | null {
    if (!containsRegion(e.region, band) || band.cols.start !== e.region.cols.start || band.cols.end !== e.region.cols.end) {
      return `region: ${key} band ${formatRegion(band)} is not a row band of ${formatRegion(e.region)}`;
    }
    if (data.length !== regionHeight(band) * e.floatsPerRow) return `size: ${key} band carries ${data.length} floats, ${regionHeight(band) * e.floatsPerRow} expected`;
    if (data.length > e.remaining) return `duplicate: ${key} received more than expected`;
    e.consume(data, band);
    this.counters.copiedBytesReceiving += data.byteLength;
    e.remaining -= data.length;
    if (e.remaining === 0) this.finish(key, e);
    return null;
  }

  private finish(key: string, e: Expectation): void {
    this.expectations.delete(key);
    e.resolve();
  }

  private fail(key: string, error: Error): void {
    const e = this.expectations.get(key);
    this.expectations.delete(key);
    e?.reject(error);
  }

  /** Rejects every waiting consumer (a peer failed) and drops stashed data. */
  failAll(error: Error): void {
    for (const [key] of this.expectations) this.fail(key, error);
    this.early.clear();
    this.earlyBytes = 0;
  }

  /** Whether anything is still awaited from device `sender`. */
  waitsFor(sender: number): boolean {
    for (const e of this.expectations.values()) if (e.sender === sender) return true;
    return false;
  }
}
