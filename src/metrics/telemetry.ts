// Per-device telemetry over HTTP (uWebSockets.js): GET /metrics in Prometheus text format and
// GET /status as JSON. The trainer updates a plain status object; this module only reads it.
import uWS from 'uWebSockets.js';
import osu from 'node-os-utils';
import type { TransportCounters } from '../peers/counters.js';
import type { LinkMeasurement } from '../peers/link-probe.js';

export interface DeviceStatus {
  rank: number;
  devices: number;
  backend: string;
  plan: { model: string; input: string; grid: string; forwardGroups: string; backwardGroups: string; batch: number; tiles: number[]; hash: string; predictedPeakBytes: number };
  /** Round trip and send rate to every peer, measured when the cluster started (null: not measured). */
  links: LinkMeasurement[] | null;
  step: number;
  stepsTotal: number;
  loss: number | null;
  learningRate: number | null;
  lastStepSeconds: number | null;
  /** Where the last step's time went: compute, compute threads idle, exchange wait, all-reduce tail. */
  phases: { compute: number; computeIdle: number; exchangeWait: number; send: number; reduce: number } | null;
  /** The planned arena: its size, the most it holds live at once, and the bytes of each layer group's buffers. */
  arena: { reservedBytes: number; peakLiveBytes: number; byGroup: Record<string, number> } | null;
  state: 'starting' | 'training' | 'done' | 'failed';
  error: string | null;
}

export interface TelemetrySources {
  status: DeviceStatus;
  counters: TransportCounters | null;
  /** The compute threads' wasm heaps (they grow and never shrink), when the wasm backend runs. */
  wasmHeapBytes: () => number | null;
}

const os = new osu.OSUtils();
let machine = { cpuPercent: 0, memoryTotalBytes: 0, memoryUsedBytes: 0 };

async function sampleMachine(): Promise<void> {
  const [cpu, memory] = await Promise.all([os.cpu.usage(), os.memory.info()]);
  if (cpu.success) machine = { ...machine, cpuPercent: cpu.data };
  if (memory.success) machine = { ...machine, memoryTotalBytes: memory.data.total.bytes, memoryUsedBytes: memory.data.used.bytes };
}

export function statusJson(sources: TelemetrySources): object {
  const memory = process.memoryUsage();
  const c = sources.counters;
  return {
    ...sources.status,
    memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, externalBytes: memory.external, wasmHeapBytes: sources.wasmHeapBytes() },
    machine,
    transport: c && {
      perPeer: Object.fromEntries(c.perPeer),
      copiesPerPayloadByte: c.copiesPerPayloadByte(),
      rejected: Object.fromEntries(c.rejected),
      backpressureEvents: c.backpressureEvents,
    },
  };
}

export function prometheusText(sources: TelemetrySources): string {
  const s = sources.status;
  const memory = process.memoryUsage();
  const lines: string[] = [];
  const metric = (name: string, help: string, type: 'gauge' | 'counter', samples: [string, number][]) => {
    lines.push(`# HELP edgefuse_${name} ${help}`, `# TYPE edgefuse_${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`edgefuse_${name}${labels} ${Number.isFinite(value) ? value : 'NaN'}`);
  };
  const rank = `rank="${s.rank}"`;
  metric('step', 'Training steps completed.', 'counter', [[`{${rank}}`, s.step]]);
  if (s.loss !== null) metric('loss', 'Loss of the last step (summed over devices, per image).', 'gauge', [[`{${rank}}`, s.loss]]);
  if (s.lastStepSeconds !== null) metric('step_seconds', 'Wall time of the last step.', 'gauge', [[`{${rank}}`, s.lastStepSeconds]]);
  if (s.phases) {
    metric('phase_seconds', 'Last step\'s time by phase (compute on this device, waiting for strips, weight all-reduce).', 'gauge',
      Object.entries(s.phases).map(([phase, seconds]) => [`{${rank},phase="${phase}"}`, seconds]));
  }
  if (s.links) {
    const measured = (pick: (l: LinkMeasurement) => number | null) => s.links!.flatMap((l) => (pick(l) === null ? [] : [[`{${rank},peer="${l.peer}"}`, pick(l)!] as [string, number]]));
    metric('link_round_trip_ms', 'Median round trip to each peer, measured when the cluster started.', 'gauge', measured((l) => l.roundTripMs));
    metric('link_send_mib_per_second', 'Payload rate of a short burst to each peer, measured when the cluster started.', 'gauge', measured((l) => l.sendMibPerSecond));
  }
  metric('memory_bytes', 'Process memory by kind.', 'gauge', [
    [`{${rank},kind="rss"}`, memory.rss], [`{${rank},kind="heap"}`, memory.heapUsed], [`{${rank},kind="external"}`, memory.external],
    ...(sources.wasmHeapBytes() !== null ? [[`{${rank},kind="wasm_heap"}`, sources.wasmHeapBytes()!] as [string, number]] : []),
  ]);
  if (s.arena) {
    metric('arena_bytes', 'The planned arena: reserved, live at its peak, and used by each layer group\'s buffers.', 'gauge', [
      [`{${rank},kind="reserved"}`, s.arena.reservedBytes], [`{${rank},kind="peak_live"}`, s.arena.peakLiveBytes],
      ...Object.entries(s.arena.byGroup).map(([group, bytes]) => [`{${rank},kind="group",group="${group}"}`, bytes] as [string, number]),
    ]);
  }
  metric('predicted_peak_bytes', 'The plan\'s predicted per-device peak memory.', 'gauge', [[`{${rank}}`, s.plan.predictedPeakBytes]]);
  metric('machine_cpu_percent', 'CPU use of the machine (node-os-utils).', 'gauge', [[`{${rank}}`, machine.cpuPercent]]);
  metric('machine_memory_used_bytes', 'Memory in use on the machine (node-os-utils).', 'gauge', [[`{${rank}}`, machine.memoryUsedBytes]]);
  const c = sources.counters;
  if (c) {
    metric('peer_bytes_total', 'Bytes exchanged with each peer.', 'counter', [...c.perPeer].flatMap(([peer, t]) => [
      [`{${rank},peer="${peer}",direction="sent"}`, t.bytesSent], [`{${rank},peer="${peer}",direction="received"}`, t.bytesReceived],
    ] as [string, number][]));
    const copies = c.copiesPerPayloadByte();
    metric('copies_per_payload_byte', 'User-space copies per payload byte (receiving_early: extra copies of payloads that arrived before their consumer).', 'gauge', [
      [`{${rank},side="sending"}`, copies.sending], [`{${rank},side="receiving"}`, copies.receiving], [`{${rank},side="receiving_early"}`, copies.receivingEarly],
    ]);
    metric('rejected_messages_total', 'Received messages rejected, by reason.', 'counter', [...c.rejected].map(([reason, n]) => [`{${rank},reason="${reason}"}`, n]));
  }
  return `${lines.join('\n')}\n`;
}

/** Serves /metrics and /status on host:port until the returned close function is called. */
export async function serveTelemetry(host: string, port: number, sources: TelemetrySources): Promise<{ port: number; close: () => void }> {
  const sampler = setInterval(() => void sampleMachine(), 2000);
  void sampleMachine();
  const app = uWS.App()
    .get('/metrics', (res) => {
      res.cork(() => res.writeHeader('content-type', 'text/plain; version=0.0.4').end(prometheusText(sources)));
    })
    .get('/status', (res) => {
      res.cork(() => res.writeHeader('content-type', 'application/json').end(JSON.stringify(statusJson(sources))));
    })
    .any('/*', (res) => {
      res.cork(() => res.writeStatus('404 Not Found').end('try /metrics or /status\n'));
    });
  const socket = await new Promise<uWS.us_listen_socket>((resolve, reject) =>
    app.listen(host, port, (s) => (s ? resolve(s) : reject(new Error(`cannot serve telemetry on ${host}:${port} (in use?)`)))));
  return {
    port: uWS.us_socket_local_port(socket),
    close: () => {
      clearInterval(sampler);
      uWS.us_listen_socket_close(socket);
    },
  };
}
