// An Exchange between devices that live in one process (verify, tests). A strip is gathered into a
// fresh array and scattered from it; all-reduce sums contributions in rank order so every device gets
// the same bits.
import type { Region } from '../tiles/region.js';
import { type Exchange, type Scatter, type StripAddress, stripKey } from './exchange.js';

interface Mailbox {
  payload?: { data: Float32Array; region: Region };
  expected?: { floats: number; scatter: Scatter; resolve: () => void; reject: (e: Error) => void };
}

interface Reduction {
  contributions: (Float32Array | undefined)[];
  waiters: { resolve: () => void; reject: (e: Error) => void }[];
}

function deliver(key: string, payload: NonNullable<Mailbox['payload']>, expected: NonNullable<Mailbox['expected']>): void {
  if (payload.data.length !== expected.floats) {
    expected.reject(new Error(`strip ${key} carries ${payload.data.length} floats, ${expected.floats} expected`));
    return;
  }
  expected.scatter(payload.data, payload.region);
  expected.resolve();
}

export function createInMemoryCluster(size: number, tileDevice: readonly number[]): Exchange[] {
  const mailboxes = new Map<string, Mailbox>();
  const reductions = new Map<string, Reduction>();

  const box = (key: string): Mailbox => {
    let entry = mailboxes.get(key);
    if (!entry) mailboxes.set(key, (entry = {}));
    return entry;
  };

  const endpoint = (rank: number): Exchange => ({
    rank,
    size,
    sendStrip(address: StripAddress, region, floats, gather): void {
      if (tileDevice[address.from] !== rank) throw new Error(`device ${rank} sent a strip from tile ${address.from}, which it does not own`);
      const key = stripKey(address);
      const entry = box(key);
      if (entry.payload) throw new Error(`strip ${key} sent twice`);
      const payload = { data: new Float32Array(floats), region };
      gather(payload.data, region);
      if (entry.expected) {
        mailboxes.delete(key);
        deliver(key, payload, entry.expected);
      } else entry.payload = payload;
    },
    expectStrip(address: StripAddress, _region, floats, scatter): Promise<void> {
      if (tileDevice[address.to] !== rank) throw new Error(`device ${rank} waits for a strip to tile ${address.to}, which it does not own`);
      const key = stripKey(address);
      const entry = box(key);
      if (entry.expected) throw new Error(`strip ${key} awaited twice`);
      return new Promise((resolve, reject) => {
        entry.expected = { floats, scatter, resolve, reject };
        if (entry.payload) {
          mailboxes.delete(key);
          deliver(key, entry.payload, entry.expected);
        }
      });
    },
    allReduceSum(key: string, values: Float32Array): Promise<void> {
      let r = reductions.get(key);
      if (!r) reductions.set(key, (r = { contributions: new Array(size).fill(undefined), waiters: [] }));
      if (r.contributions[rank]) throw new Error(`device ${rank} contributed to reduction ${key} twice`);
      r.contributions[rank] = values;
      const done = new Promise<void>((resolve, reject) => r.waiters.push({ resolve, reject }));
      if (r.contributions.every((c) => c !== undefined)) {
        reductions.delete(key);
        const parts = r.contributions as Float32Array[];
        const lengths = parts.map((p) => p.length);
        if (lengths.some((n) => n !== lengths[0])) {
          // Every device learns of the mismatch, not only the last to contribute.
          const error = new Error(`reduction ${key}: devices contributed different lengths ${lengths.join(', ')}`);
          for (const w of r.waiters) w.reject(error);
          return done;
        }
        const sum = new Float32Array(lengths[0]!);
        for (const part of parts) for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + part[i]!;
        for (const part of parts) part.set(sum);
        for (const w of r.waiters) w.resolve();
      }
      return done;
    },
  });
  return Array.from({ length: size }, (_, rank) => endpoint(rank));
}
