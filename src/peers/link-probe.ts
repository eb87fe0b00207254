// Link measurement when a cluster starts: every device measures the round trip to each peer (small
// ping/pong messages) and the rate of a short burst it sends to each peer, over the same links and
// message path training uses. Bursts go in rounds: in round r device d sends to d + r (mod N), so
// each device sends one burst and receives one at a time (full duplex, nothing shared on a switch).
// Each timed burst follows an untimed one an eighth its size. Devices meet at a barrier before the pings and after each round, so that no burst sits in front
// of a ping's reply; barriers and replies are bounded by a timeout, and a peer that does not take
// part (or a link that fails) leaves its values null with the reason, never a hang or a crash.

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
  /** Payload rate of the burst this device sent to the peer, MiB/s (one round trip taken off its time). */
  readonly sendMibPerSecond: number | null;
  readonly burstBytes: number;
  readonly burstMs: number | null;
  /** Why a value is missing. */
  readonly error: string | null;
}

export interface ProbeOptions {
  /** Timed round trips per peer (after one untimed). */
  readonly pings?: number;
  readonly burstBytes?: number;
  /** Bound of the whole measurement. */
  readonly timeoutMs?: number;
}

/** Barrier epochs of the measurement, far from the ones training and the tools use. */
export const PROBE_EPOCH = 0x7fff0000;

export const DEFAULT_BURST_BYTES = 512 * 1024;

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function measureLinks(link: ProbeLink, options: ProbeOptions = {}): Promise<LinkMeasurement[]> {
  const pings = options.pings ?? 10;
  const burstFloats = Math.ceil((options.burstBytes ?? DEFAULT_BURST_BYTES) / 4);
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

  const bursts = new Map<number, number>();
  for (let round = 1; round < link.size; round++) {
    const peer = (link.rank + round) % link.size;
    if (!errors.has(peer)) {
      try {
        // An untimed eighth first: the message path's code is compiled and the link's window opened
        // before the timed burst (a cold first burst takes several times longer on a fast link).
        await link.burst(peer, Math.ceil(burstFloats / 8), left());
        const started = performance.now();
        await link.burst(peer, burstFloats, left());
        bursts.set(peer, performance.now() - started);
      } catch (error) {
        failed(peer, 'burst', error);
      }
    }
    await meet(1 + round);
  }

  return peers.map((peer) => {
    const times = trips.get(peer)!;
    const roundTripMs = times.length > 0 ? median(times) : null;
    const burstMs = bursts.get(peer) ?? null;
    // The acknowledgement of the last chunk comes back one round trip after the data has left.
    const transferMs = burstMs === null ? null : burstMs - (roundTripMs ?? 0) > burstMs / 2 ? burstMs - (roundTripMs ?? 0) : burstMs;
    return {
      peer,
      address: link.peerName(peer),
      roundTripMs,
      roundTripMinMs: times.length > 0 ? Math.min(...times) : null,
      sendMibPerSecond: transferMs === null ? null : (burstFloats * 4) / (1024 * 1024) / (transferMs / 1000),
      burstBytes: burstFloats * 4,
      burstMs,
      error: errors.get(peer) ?? null,
    };
  });
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
