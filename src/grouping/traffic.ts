// What crosses the network, per device, and how long it takes on a profile's links. Strips between
// tiles of the same device are local copies: no link time, only the copy (counted in localFloats).
import type { Region } from '../tiles/region.js';
import type { LinkProfile } from './profile.js';

const FLOAT = 4;

export interface DeviceTraffic {
  readonly sentBytes: number[];
  readonly receivedBytes: number[];
  readonly sentMessages: number[];
  readonly receivedMessages: number[];
  /** senders[d]: the devices that send to device d. */
  readonly senders: Set<number>[];
  /** Floats device d copies between its own tiles (strips that do not leave it). */
  readonly localFloats: number[];
}

/** Messages a strip of `floats` floats over `rows` rows becomes: bands of whole rows (src/peers/row-bands.ts). */
export function stripMessages(rows: number, floats: number, maxFloats: number): number {
  if (rows === 0) return 0;
  const rowsPerBand = Math.max(1, Math.floor(maxFloats / (floats / rows)));
  return Math.ceil(rows / rowsPerBand);
}

/**
 * Per-device bytes and messages of one exchange point: the strip from tile i to tile j is
 * source(i) ∩ wanted(j) (src/tiles/strips.ts), of `floatsPerPixel` floats per position. Computed
 * with numbers only: the planner calls this for every group of every grid.
 */
export function stripTraffic(
  tiles: number,
  source: (tile: number) => Region,
  wanted: (tile: number) => Region,
  tileDevice: readonly number[],
  devices: number,
  floatsPerPixel: number,
  link: LinkProfile,
): DeviceTraffic {
  const zeros = () => new Array<number>(devices).fill(0);
  const traffic: DeviceTraffic = {
    sentBytes: zeros(), receivedBytes: zeros(), sentMessages: zeros(), receivedMessages: zeros(),
    senders: Array.from({ length: devices }, () => new Set<number>()), localFloats: zeros(),
  };
  const sources = Array.from({ length: tiles }, (_, t) => source(t));
  const targets = Array.from({ length: tiles }, (_, t) => wanted(t));
  for (let from = 0; from < tiles; from++) {
    const a = tileDevice[from]!;
    const s = sources[from]!;
    for (let to = 0; to < tiles; to++) {
      const b = tileDevice[to]!;
      if (from === to) continue;
      const w = targets[to]!;
      const rows = Math.min(s.rows.end, w.rows.end) - Math.max(s.rows.start, w.rows.start);
      const cols = Math.min(s.cols.end, w.cols.end) - Math.max(s.cols.start, w.cols.start);
      if (rows <= 0 || cols <= 0) continue;
      const floats = rows * cols * floatsPerPixel;
      if (a === b) {
        traffic.localFloats[a]! += floats;
        continue;
      }
      const messages = stripMessages(rows, floats, link.maxMessageFloats);
      traffic.sentBytes[a]! += floats * FLOAT;
      traffic.receivedBytes[b]! += floats * FLOAT;
      traffic.sentMessages[a]! += messages;
      traffic.receivedMessages[b]! += messages;
      traffic.senders[b]!.add(a);
    }
  }
  return traffic;
}

/** Seconds one device's link needs to carry `bytes` one way, paying the latency `hops` times (messages one after another). */
export function linkSeconds(link: LinkProfile, bytes: number, hops: number): number {
  return bytes / (link.mibPerSecond * 1024 * 1024) + (hops * link.latencyMs) / 1000;
}

/** Device CPU seconds to send or receive `bytes` (on the compute threads' CPU). */
export const handlingSeconds = (link: LinkProfile, bytes: number): number => (bytes / (1024 * 1024)) * (link.cpuMsPerMiB / 1000);

/**
 * Link time of one device's strips at an exchange point: the bytes, and the latency once. The strips
 * to different neighbours leave together on their own sockets, and a strip's row bands follow each
 * other; what the latency stands for, a device's scheduler thread getting CPU to answer, is paid
 * once for whatever has arrived. (Fitted per message on 2 devices, where a device has one neighbour,
 * it over-predicted `each` by 28% on 3 devices and 39% on 4: README, session 8.)
 */
export const stripSeconds = (link: LinkProfile, bytes: number, messages: number): number => linkSeconds(link, bytes, messages > 0 ? 1 : 0);

/**
 * How long device d waits for an exchange point once every sender is ready: its own incoming link,
 * or the busiest sender's outgoing link, whichever is slower (each link is full duplex).
 */
export function exchangeWaitSeconds(traffic: DeviceTraffic, link: LinkProfile, d: number): number {
  if (traffic.senders[d]!.size === 0) return 0;
  let wait = stripSeconds(link, traffic.receivedBytes[d]!, traffic.receivedMessages[d]!);
  for (const s of traffic.senders[d]!) wait = Math.max(wait, stripSeconds(link, traffic.sentBytes[s]!, traffic.sentMessages[s]!));
  return wait;
}

export interface RingCost {
  /** Bytes each device sends (and receives). */
  readonly bytesPerDevice: number;
  readonly messagesPerDevice: number;
  /** Rounds one after another: a ring of N devices runs 2(N-1). */
  readonly rounds: number;
  readonly seconds: number;
}

/**
 * The ring all-reduce of src/peers/ring-all-reduce.ts over `devices`: 2(N-1) rounds, each moving one
 * 1/N segment cut into chunks; every device sends and receives at once. A chunk is forwarded as soon
 * as it arrives, so the chunks stream behind the first: the latency is paid once per round (the
 * first chunk's way round the ring), not once per chunk.
 */
export function ringAllReduceCost(floats: number, devices: number, link: LinkProfile): RingCost {
  if (devices <= 1 || floats === 0) return { bytesPerDevice: 0, messagesPerDevice: 0, rounds: 0, seconds: 0 };
  const rounds = 2 * (devices - 1);
  const segment = Math.ceil(floats / devices);
  const bytesPerDevice = (rounds * floats * FLOAT) / devices;
  const messagesPerDevice = rounds * Math.ceil(segment / link.maxMessageFloats);
  return { bytesPerDevice, messagesPerDevice, rounds, seconds: linkSeconds(link, bytesPerDevice, rounds) };
}
