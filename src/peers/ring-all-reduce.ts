// Decentralised sum all-reduce over a ring: N-1 reduce-scatter rounds then N-1 all-gather rounds,
// each segment cut into chunks that are sent as soon as their round allows. Each segment's final
// sum is formed on one device and then copied to all, so every device ends with the same bits.
import { balancedSpans } from '../tiles/grid.js';

export interface ReduceLink {
  rank: number;
  size: number;
  /** Send floats [offset, offset + count) of round `round` to the next device in the ring. */
  sendChunk(bucket: string, round: number, offset: number, count: number, gather: (target: Float32Array) => void): void;
  /** Resolves once the chunk from the previous device has been passed to `consume`. */
  expectChunk(bucket: string, round: number, offset: number, count: number, consume: (source: Float32Array) => void): Promise<void>;
}

function chunks(start: number, end: number, maxFloats: number): [number, number][] {
  const out: [number, number][] = [];
  for (let at = start; at < end; at += maxFloats) out.push([at, Math.min(end, at + maxFloats)]);
  return out;
}

export async function ringAllReduce(link: ReduceLink, bucket: string, values: Float32Array, maxChunkFloats: number): Promise<void> {
  const n = link.size;
  if (n === 1) return;
  const segments = balancedSpans(values.length, n);
  const segment = (i: number) => segments[((i % n) + n) % n]!;
  const r = link.rank;
  const rounds = 2 * (n - 1);
  // Register every receipt up front so that each chunk is consumed from the message as it arrives.
  const received: Promise<void>[] = [];
  for (let round = 0; round < rounds; round++) {
    const reducing = round < n - 1;
    const s = reducing ? segment(r - round - 1) : segment(r - (round - (n - 1)));
    const parts = chunks(s.start, s.end, maxChunkFloats).map(([from, to]) =>
      link.expectChunk(bucket, round, from, to - from, (source) => {
        if (reducing) for (let i = 0; i < source.length; i++) values[from + i] = values[from + i]! + source[i]!;
        else values.set(source, from);
      }),
    );
    const round_ = Promise.all(parts).then(() => undefined);
    round_.catch(() => undefined); // a failed peer rejects every round; the await below reports it
    received.push(round_);
  }
  for (let round = 0; round < rounds; round++) {
    if (round > 0) await received[round - 1];
    const reducing = round < n - 1;
    const s = reducing ? segment(r - round) : segment(r + 1 - (round - (n - 1)));
    for (const [from, to] of chunks(s.start, s.end, maxChunkFloats)) {
      link.sendChunk(bucket, round, from, to - from, (target) => target.set(values.subarray(from, to)));
    }
  }
  await received[rounds - 1];
}
