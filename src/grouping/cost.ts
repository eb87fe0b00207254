// Predicted step time and memory of a tile plan on a profile. Pure. The step follows
// src/loop/device-step.ts at device granularity:
// - forward groups in order; a device sends its cores once all its tiles finished the previous group,
//   and a tile of group g starts once its halo is in;
// - backward windows last to first; a recomputing window first waits for its input strips (sent when
//   each device reaches the window); a window's partial gradients leave before its first layer's
//   filter gradient, and the window ends once every gradient strip for this device has landed;
// - each window's weight gradients are all-reduced on a ring once every device finished the window,
//   one reduction after another, overlapping the windows still to run;
// - the reductions and the strips share each device's link: a strip sent while a ring runs waits
//   for the ring's current round (the transport queues messages in order), and the ring is
//   delayed by the strips' link time;
// - moving bytes costs the device CPU (profile.link.cpuMsPerMiB) that its compute would otherwise
//   use: a strip's is paid by its receiver before the data can be used and by its sender before
//   its next compute; a ring's is paid by each device's next backward window (it runs alongside),
//   and what no window is left to absorb extends the ring;
// - strips between tiles of one device are copies, an elementwise pass over their floats on the
//   receiving device.
// Not modelled: the tail and its gather/scatter, data loading, the optimizer update, and per-tile
// (rather than per-device) arrival of halos.
import { estimateDeviceMemory } from '../memory/estimate.js';
import { type TilePlan, clusterSize, exchangeRegions, tilesOfDevice, weightBucketLength } from '../tiles/plan.js';
import { type CostContext, backwardTaskFlops, backwardTaskSeconds, forwardTaskFlops, forwardTaskSeconds, scheduleTasks } from './compute-cost.js';
import type { DeviceProfile } from './profile.js';
import { type DeviceTraffic, exchangeWaitSeconds, handlingSeconds, linkSeconds, ringAllReduceCost, stripSeconds, stripTraffic } from './traffic.js';

export interface DevicePrediction {
  readonly rank: number;
  readonly tiles: readonly number[];
  /** Busy time of the device's workers' critical path: forward groups and backward windows. */
  readonly forwardSeconds: number;
  readonly backwardSeconds: number;
  /** FLOPs computed (redundant overlap compute included), forward and backward. */
  readonly flops: number;
  /** Strip bytes and messages over all exchange points (reductions apart). */
  readonly sentBytes: number;
  readonly receivedBytes: number;
  readonly messages: number;
  /** When its last backward window ended. */
  readonly backwardEnd: number;
}

export interface ExchangePointTraffic {
  readonly phase: 'halo' | 'recompute' | 'grad';
  /** Forward group (halo) or backward window (recompute, grad). */
  readonly group: number;
  readonly map: number;
  readonly traffic: DeviceTraffic;
}

export interface StepPrediction {
  readonly stepSeconds: number;
  /** The step split on the device with the most compute: its compute, its waits, the exposed reduce. */
  readonly computeSeconds: number;
  readonly exchangeSeconds: number;
  readonly reduceSeconds: number;
  /** Bytes each device sends (and receives) in the weight all-reduce (over every device of the cluster, replicas included). */
  readonly reduceBytesPerDevice: number;
  /** FLOPs over all devices divided by the FLOPs of the unpartitioned step. */
  readonly redundancy: number;
  readonly devices: readonly DevicePrediction[];
  readonly exchanges: readonly ExchangePointTraffic[];
}

export interface MemoryPrediction {
  /** estimateDeviceMemory per device (only up to the first over `stopAbove` when incomplete). */
  readonly perDevice: readonly number[];
  /** The largest of perDevice: the plan's peak when complete, else a lower bound of it. */
  readonly peakBytes: number;
  readonly complete: boolean;
}

export interface PlanPrediction {
  readonly time: StepPrediction;
  readonly memory: MemoryPrediction;
}

export const costContext = (plan: TilePlan, profile: DeviceProfile): CostContext => ({ net: plan.net, maps: plan.maps, batch: plan.batch, profile, recomputeStashFlops: plan.recomputeStashFlops });

/** Every exchange point of the step with its per-device traffic, in step order. */
export function planExchanges(plan: TilePlan, profile: DeviceProfile): ExchangePointTraffic[] {
  const point = (phase: 'halo' | 'recompute' | 'grad', group: number): ExchangePointTraffic => {
    const { map, source, wanted } = exchangeRegions(plan, phase, group);
    const floatsPerPixel = plan.batch * plan.maps[map]!.channels;
    return { phase, group, map, traffic: stripTraffic(plan.tiles, source, wanted, plan.tileDevice, plan.devices, floatsPerPixel, profile.link) };
  };
  const points: ExchangePointTraffic[] = [];
  for (let g = 1; g < plan.forwardGroups.length; g++) points.push(point('halo', g));
  for (let h = plan.backward.length - 1; h >= 0; h--) {
    const w = plan.backward[h]!;
    if (w.reuseForward === null && w.recomputeFrom > 0) points.push(point('recompute', h));
    if (w.group.first > 0) points.push(point('grad', h));
  }
  return points;
}

/**
 * The ring reductions on the links: when the one in flight ends, and how long one of its rounds
 * takes (the longest a strip queued behind it waits).
 */
interface LinkState {
  ringEnd: number;
  ringRound: number;
}

/** When a strip handed to the transport at `ready` starts moving. */
const leaves = (link: LinkState, ready: number): number => (link.ringEnd > ready ? Math.min(link.ringEnd, ready + link.ringRound) : ready);

/**
 * When device d can use every strip of an exchange point, given when each device is ready to send:
 * senders pay their CPU for the bytes out, the link carries them, device d pays its CPU for the bytes in.
 */
function arrival(link: LinkState, ready: readonly number[], traffic: DeviceTraffic, profile: DeviceProfile, d: number): number {
  const out = (s: number) => handlingSeconds(profile.link, traffic.sentBytes[s]!);
  const start = Math.max(ready[d]! + out(d), ...[...traffic.senders[d]!].map((s) => leaves(link, ready[s]! + out(s))));
  return start + exchangeWaitSeconds(traffic, profile.link, d) + handlingSeconds(profile.link, traffic.receivedBytes[d]!)
    + traffic.localFloats[d]! / (profile.compute.elementwiseGflops * 1e9);
}

/** Strips of an exchange point that travel while a ring runs push the ring's end by their link time. */
function delayRing(link: LinkState, ready: readonly number[], traffic: DeviceTraffic, profile: DeviceProfile): void {
  let delay = 0;
  traffic.sentBytes.forEach((bytes, s) => {
    if (bytes > 0 && ready[s]! < link.ringEnd) delay = Math.max(delay, stripSeconds(profile.link, bytes, traffic.sentMessages[s]!));
  });
  link.ringEnd += delay;
}

/** Floats of the weight gradients of layers first..last. */
function bucketFloats(plan: TilePlan, first: number, last: number): number {
  let floats = 0;
  for (let l = first; l <= last; l++) floats += weightBucketLength(plan, l) ?? 0;
  return floats;
}

export function predictStep(plan: TilePlan, profile: DeviceProfile): StepPrediction {
  const ctx = costContext(plan, profile);
  const n = plan.devices;
  const ranks = Array.from({ length: n }, (_, d) => d);
  const tiles = ranks.map((d) => tilesOfDevice(plan, d));
  const exchanges = planExchanges(plan, profile);
  const find = (phase: string, group: number) => exchanges.find((e) => e.phase === phase && e.group === group)!.traffic;
  const forwardBusy = new Array<number>(n).fill(0);
  const backwardBusy = new Array<number>(n).fill(0);
  const flops = new Array<number>(n).fill(0);
  let done = new Array<number>(n).fill(0);
  const link: LinkState = { ringEnd: 0, ringRound: 0 };
  // CPU seconds of ring traffic each device still has to pay (absorbed by its next backward window).
  const ringCpu = new Array<number>(n).fill(0);

  plan.forwardGroups.forEach((_, g) => {
    const halo = g > 0 ? find('halo', g) : null;
    done = ranks.map((d) => {
      const ready = halo ? arrival(link, done, halo, profile, d) : done[d]!;
      const regions = tiles[d]!.map((t) => plan.forward[g]![t]!);
      const busy = scheduleTasks(regions.map((r) => ({ total: forwardTaskSeconds(ctx, r), afterPartial: 0 })), profile).makespan;
      forwardBusy[d]! += busy;
      flops[d]! += regions.reduce((sum, r) => sum + forwardTaskFlops(ctx, r), 0);
      return ready + busy;
    });
  });

  let reduceBytesPerDevice = 0;
  for (let h = plan.backward.length - 1; h >= 0; h--) {
    const w = plan.backward[h]!;
    const recompute = w.reuseForward === null;
    const input = recompute && w.recomputeFrom > 0 ? find('recompute', h) : null;
    const grad = w.group.first > 0 ? find('grad', h) : null;
    const started = done;
    const computed = ranks.map((d) => {
      const ready = input ? arrival(link, started, input, profile, d) : started[d]!;
      const regions = tiles[d]!.map((t) => w.regions[t]!);
      const schedule = scheduleTasks(regions.map((r) => backwardTaskSeconds(ctx, r, w.group.first, recompute)), profile);
      backwardBusy[d]! += schedule.makespan;
      flops[d]! += regions.reduce((sum, r) => sum + backwardTaskFlops(ctx, r, w.group.first, recompute), 0);
      // The rings in flight take their CPU from this window.
      const slower = ringCpu[d]!;
      ringCpu[d] = 0;
      return { end: ready + schedule.makespan + slower, partialsOut: ready + schedule.partialsOut + slower };
    });
    if (input) delayRing(link, started, input, profile);
    const partialsOut = computed.map((c) => c.partialsOut);
    done = ranks.map((d) => {
      if (!grad) return computed[d]!.end;
      return Math.max(computed[d]!.end, arrival(link, partialsOut, grad, profile, d));
    });
    if (grad) delayRing(link, partialsOut, grad, profile);
    // The ring spans the whole cluster: data-parallel replicas of the plan reduce with each other.
    const ring = ringAllReduceCost(bucketFloats(plan, w.group.first, w.group.last), clusterSize(plan), profile.link);
    if (ring.seconds > 0) {
      // A ring issued while another is in flight queues its bytes behind it, and its rounds' latency
      // passes while the earlier ring's bytes still move: it ends when the link has carried both, or
      // a whole ring after its start, whichever is later.
      const start = Math.max(...done);
      link.ringEnd = Math.max(link.ringEnd + linkSeconds(profile.link, ring.bytesPerDevice, 0), start + ring.seconds);
      link.ringRound = ring.seconds / ring.rounds;
      for (const d of ranks) ringCpu[d]! += handlingSeconds(profile.link, 2 * ring.bytesPerDevice);
    }
    reduceBytesPerDevice += ring.bytesPerDevice;
  }

  const backwardEnd = Math.max(...done);
  // Ring CPU no window absorbed: the last rings are as slow as the slower of link and CPU.
  const stepSeconds = Math.max(backwardEnd, link.ringEnd, ...ranks.map((d) => done[d]! + ringCpu[d]!));
  const busiest = ranks.reduce((a, d) => (forwardBusy[d]! + backwardBusy[d]! > forwardBusy[a]! + backwardBusy[a]! ? d : a), 0);
  const computeSeconds = forwardBusy[busiest]! + backwardBusy[busiest]!;
  const reduceSeconds = stepSeconds - backwardEnd;
  const sum = (pick: (t: DeviceTraffic) => number[], d: number) => exchanges.reduce((s, e) => s + pick(e.traffic)[d]!, 0);
  return {
    stepSeconds,
    computeSeconds,
    exchangeSeconds: stepSeconds - computeSeconds - reduceSeconds,
    reduceSeconds,
    reduceBytesPerDevice,
    redundancy: flops.reduce((a, b) => a + b, 0) / unpartitionedFlops(plan, profile),
    devices: ranks.map((d) => ({
      rank: d,
      tiles: tiles[d]!,
      forwardSeconds: forwardBusy[d]!,
      backwardSeconds: backwardBusy[d]!,
      flops: flops[d]!,
      sentBytes: sum((t) => t.sentBytes, d),
      receivedBytes: sum((t) => t.receivedBytes, d),
      messages: sum((t) => t.sentMessages, d),
      backwardEnd: done[d]!,
    })),
    exchanges,
  };
}

/** FLOPs of one step of the whole front on one device, without tiles: the baseline of `redundancy`. */
export function unpartitionedFlops(plan: TilePlan, profile: DeviceProfile): number {
  // The plain network's FLOPs: a recomputed stash is redundant work like a recomputed overlap.
  const ctx = { ...costContext(plan, profile), recomputeStashFlops: 0 };
  const whole = (m: number) => ({ rows: { start: 0, end: plan.maps[m]!.height }, cols: { start: 0, end: plan.maps[m]!.width } });
  const last = plan.net.layers.length - 1;
  const regions = {
    firstLayer: 0, lastLayer: last,
    held: plan.maps.map((_, m) => whole(m)),
    read: plan.net.layers.map((_, l) => whole(l)),
  };
  return forwardTaskFlops(ctx, regions) + backwardTaskFlops(ctx, regions, 0, false);
}

/** Peak memory per device; stops at the first device over `stopAbove` (enough to refuse a plan). */
export function predictMemory(plan: TilePlan, profile: DeviceProfile, stopAbove = Infinity): MemoryPrediction {
  const runtimeBytes = Math.round(profile.memory.runtimeMiB * 1024 * 1024);
  const perDevice: number[] = [];
  for (let rank = 0; rank < plan.devices; rank++) {
    perDevice.push(estimateDeviceMemory(plan, rank, { runtimeBytes, workers: profile.compute.workers }).totalBytes);
    if (perDevice[rank]! > stopAbove) break;
  }
  return { perDevice, peakBytes: Math.max(...perDevice), complete: perDevice.length === plan.devices };
}

export function predictPlan(plan: TilePlan, profile: DeviceProfile): PlanPrediction {
  return { time: predictStep(plan, profile), memory: predictMemory(plan, profile) };
}
