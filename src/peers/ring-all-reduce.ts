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
  const reducing = (round: number) => round < n - 1;
  // Round k receives the segment that round k + 1 sends on, cut into the same chunks, so chunk j can
  // be forwarded as soon as it has arrived: the rounds pipeline chunk by chunk.
  const receivedSegment = (round: number) => (reducing(round) ? segment(r - round - 1) : segment(r - (round - (n - 1))));
  const sentSegment = (round: number) => (reducing(round) ? segment(r - round) : segment(r + 1 - (round - (n - 1))));
  const arrivals: Promise<void>[][] = [];
  for (let round = 0; round < rounds; round++) {
    const s = receivedSegment(round);
    arrivals.push(chunks(s.start, s.end, maxChunkFloats).map(([from, to]) =>
      link.expectChunk(bucket, round, from, to - from, (source) => {
        if (reducing(round)) for (let i = 0; i < source.length; i++) values[from + i] = values[from + i]! + source[i]!;
        else values.set(source, from);
      })));
  }
  const sends: Promise<void>[] = [];
  for (let round = 0; round < rounds; round++) {
    const s = sentSegment(round);
    chunks(s.start, s.end, maxChunkFloats).forEach(([from, to], j) => {
      const send = () => link.sendChunk(bucket, round, from, to - from, (target) => target.set(values.subarray(from, to)));
      if (round === 0) send();
      else sends.push(arrivals[round - 1]![j]!.then(send));
    });
  }
  await Promise.all([...sends, ...arrivals.flat()]);
}
