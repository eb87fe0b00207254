// Link measurement when a cluster starts: every device measures the round trip to each peer (small
// ping/pong messages) and the rate of a short burst it sends to each peer, over the same links and
// message path training uses. Bursts go in rounds: in round r device d sends to d + r (mod N), so
// each device sends one burst and receives one at a time (full duplex, nothing shared on a switch);
// per peer an untimed 64 KiB burst, then 64 KiB and 256 KiB bursts 3 times each, the rate from the
// difference of the fastest of each (see sendRate). Devices meet at a barrier before the pings and
// after each round, so that no burst sits in front of a ping's reply; barriers and replies are
// bounded by a timeout, and a peer that does not take part (or a link that fails) leaves its values
// null with the reason, never a hang or a crash.

/** What the transport provides (PeerNode implements it). */
export interface ProbeLink {
  readonly rank: number;
  readonly size: number;
  peerName(peer: number): string;
  /** Sends a ping; resolves when its pong is back. Rejects on timeout or a failed link. */
  roundTrip(peer: number, timeoutMs: number): Promise<void>;
  /** Sends `floats` of filler in chunks; resolves when the peer acknowledged the last one. */
  burst(peer: number, floats: number, timeoutMs: number): Promise<void>;
  /** Resolves true once every device entered barrier `epoch`, false after `timeoutMs`. */
  barrier(epoch: number, timeoutMs: number): Promise<boolean>;
}

export interface LinkMeasurement {
  readonly peer: number;
  readonly address: string;
  /** Median and fastest of the timed round trips, ms. */
  readonly roundTripMs: number | null;
  readonly roundTripMinMs: number | null;
  /** Payload rate this device sends to the peer, MiB/s (sendRate). */
  readonly sendMibPerSecond: number | null;
  readonly burstBytes: number;
  /** The fastest full burst, until its acknowledgement was back. */
  readonly burstMs: number | null;
  /** Why a value is missing. */
  readonly error: string | null;
}

export interface ProbeOptions {
  /** Timed round trips per peer (after one untimed). */
  readonly pings?: number;
  readonly burstBytes?: number;
  /** Timed bursts of each size per peer (full and a quarter of it; the fastest of each counts). */
  readonly bursts?: number;
  /** Bound of the whole measurement. */
  readonly timeoutMs?: number;
}

/** Barrier epochs of the measurement, far from the ones training and the tools use. */
export const PROBE_EPOCH = 0x7fff0000;

export const DEFAULT_BURST_BYTES = 256 * 1024;

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function measureLinks(link: ProbeLink, options: ProbeOptions = {}): Promise<LinkMeasurement[]> {
  const pings = options.pings ?? 10;
  const burstFloats = Math.ceil((options.burstBytes ?? DEFAULT_BURST_BYTES) / 4);
  const repeats = Math.max(1, options.bursts ?? 3);
  const shortFloats = Math.ceil(burstFloats / 4);
  const deadline = performance.now() + (options.timeoutMs ?? 5000);
  const left = () => Math.max(1, deadline - performance.now());
  // A barrier waits at most a second, and once one was missed (a peer takes no part) a tenth of
  // that: such a peer costs little, and leaves the measurement most of its time.
  let missed = false;
  const meet = async (epoch: number) => {
    const met = await link.barrier(PROBE_EPOCH + epoch, Math.min(missed ? 100 : 1000, left() / 2)).catch(() => false);
    missed ||= !met;
  };
  const peers = Array.from({ length: link.size }, (_, p) => p).filter((p) => p !== link.rank);
  const trips = new Map<number, number[]>(peers.map((p) => [p, []]));
  const errors = new Map<number, string>();
  const failed = (peer: number, what: string, error: unknown) => {
    if (!errors.has(peer)) errors.set(peer, `${what}: ${(error as Error).message}`);
  };

  await meet(0);
  await Promise.all(peers.map(async (peer) => {
    try {
      for (let i = 0; i <= pings; i++) {
        const started = performance.now();
        await link.roundTrip(peer, left());
        if (i > 0) trips.get(peer)!.push(performance.now() - started);
      }
    } catch (error) {
      failed(peer, 'round trip', error);
    }
  }));
  await meet(1);

  const bursts = new Map<number, { short: number; full: number }>();
  for (let round = 1; round < link.size; round++) {
    const peer = (link.rank + round) % link.size;
    if (!errors.has(peer)) {
      try {
        // An untimed short burst first (the message path's code compiled, the link's window opened:
        // a cold burst takes several times longer on a fast link), then short and full bursts
        // alternated, the fastest of each kept.
        await link.burst(peer, shortFloats, left());
        const best = { short: Infinity, full: Infinity };
        for (let i = 0; i < repeats; i++) {
          for (const kind of ['short', 'full'] as const) {
            const started = performance.now();
            await link.burst(peer, kind === 'short' ? shortFloats : burstFloats, left());
            best[kind] = Math.min(best[kind], performance.now() - started);
          }
        }
        bursts.set(peer, best);
      } catch (error) {
        failed(peer, 'burst', error);
      }
    }
    await meet(1 + round);
  }

  return peers.map((peer) => {
    const times = trips.get(peer)!;
    const roundTripMs = times.length > 0 ? median(times) : null;
    const burst = bursts.get(peer) ?? null;
    return {
      peer,
      address: link.peerName(peer),
      roundTripMs,
      roundTripMinMs: times.length > 0 ? Math.min(...times) : null,
      sendMibPerSecond: burst === null ? null : sendRate(burstFloats * 4, shortFloats * 4, burst, roundTripMs ?? 0),
      burstBytes: burstFloats * 4,
      burstMs: burst?.full ?? null,
      error: errors.get(peer) ?? null,
    };
  });
}

/**
 * MiB/s from the fastest full and short bursts. The difference of the two takes off what every
 * burst pays once: the acknowledgement's round trip, and a shaper's burst allowance (a token bucket
 * lets its first bytes through at once). When noise makes the difference meaningless (a fast link,
 * where both take a millisecond), the full burst less one round trip.
 */
export function sendRate(fullBytes: number, shortBytes: number, best: { short: number; full: number }, roundTripMs: number): number {
  const mib = (bytes: number, ms: number) => bytes / (1024 * 1024) / (ms / 1000);
  const extra = best.full - best.short;
  if (extra > 0.25 * best.full) return mib(fullBytes - shortBytes, extra);
  return mib(fullBytes, best.full - roundTripMs > best.full / 2 ? best.full - roundTripMs : best.full);
}

/** One line per link, and the values a device profile's `link` would take from them. */
export function describeLinks(links: readonly LinkMeasurement[]): string[] {
  const ms = (x: number | null) => (x === null ? '?' : x.toFixed(2));
  const lines = links.map((l) =>
    `link to rank ${l.peer} (${l.address}): round trip ${ms(l.roundTripMs)} ms (fastest ${ms(l.roundTripMinMs)}), ` +
    `sending ${l.sendMibPerSecond === null ? '?' : l.sendMibPerSecond.toFixed(1)} MiB/s (${l.burstBytes / 1024} KiB in ${ms(l.burstMs)} ms)` +
    (l.error ? `; ${l.error}` : ''));
  const rates = links.flatMap((l) => (l.sendMibPerSecond === null ? [] : [l.sendMibPerSecond]));
  const trips = links.flatMap((l) => (l.roundTripMs === null ? [] : [l.roundTripMs]));
  if (rates.length > 0 && trips.length > 0) {
    lines.push(`links as a profile's "link" (slowest link, half the slowest round trip): "mibPerSecond": ${Number(Math.min(...rates).toPrecision(3))}, "latencyMs": ${Number((Math.max(...trips) / 2).toPrecision(3))}`);
  }
  return lines;
}
