// Transport benchmark: goodput of strip exchange and of the ring all-reduce between two processes
// over uWebSockets.js, against raw TCP (node:net) between the same two processes, on loopback and
// across two network namespaces joined by a veth link limited to 100 Mbit/s with tbf (root only).
//   node dist/bench-transport.js [--sizes 65536,1048576,4194304] [--total-mib 64] [--no-netns] [--out bench-results/transport.json]
// Internally the same file runs each side (--role).
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { dirname } from 'node:path';
import { PeerNode } from '../src/peers/peer-node.js';
import { toolArgs } from './lib/tool-args.js';

const values = toolArgs('bench-transport', 'Goodput of strip exchange and the ring all-reduce between two processes over uWebSockets.js against raw TCP, on loopback and (root) across a 100 Mbit/s veth link.', {
    role: { type: 'string' },
    kind: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    'peer-host': { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '9400' },
    size: { type: 'string' },
    'total-mib': { type: 'string', default: '64' },
    sizes: { type: 'string', default: '65536,1048576,4194304' },
    'no-netns': { type: 'boolean', default: false },
    repeats: { type: 'string', default: '3' },
    out: { type: 'string', default: 'bench-results/transport.json' },
  });

// ---- one side of one measurement ----------------------------------------------------------------

/** Both sides send `totalBytes` (after as much warm-up) to each other at once over one connection. */
async function rawTcpDuplex(role: string, size: number, totalBytes: number, port: number, peerHost: string): Promise<number> {
  const buffer = Buffer.alloc(size, 7);
  const exchange = (socket: import('node:net').Socket) =>
    new Promise<number>((resolve) => {
      let sent = 0;
      let received = 0;
      let started = 0;
      let seconds = -1;
      let flushed = false;
      // Done when everything arrived and everything we wrote reached the kernel (exiting earlier
      // would drop the tail of our own sends).
      const finish = () => seconds >= 0 && flushed && resolve(seconds);
      const pump = () => {
        while (sent < 2 * totalBytes) {
          sent += size;
          const last = sent >= 2 * totalBytes;
          const ok = socket.write(buffer, last ? () => { flushed = true; finish(); } : undefined);
          if (!ok && !last) return socket.once('drain', pump);
        }
      };
      socket.on('data', (chunk) => {
        received += chunk.length;
        if (!started && received >= totalBytes) started = performance.now();
        if (received >= 2 * totalBytes && seconds < 0) {
          seconds = (performance.now() - started) / 1000;
          finish();
        }
      });
      pump();
    });
  if (role === 'b') {
    return new Promise((resolve) => {
      const server = createServer((socket) => exchange(socket).then((seconds) => { socket.end(); server.close(); resolve(seconds); }));
      server.listen(port, '0.0.0.0', () => process.stdout.write('ready\n'));
    });
  }
  return new Promise((resolve) => {
    const socket = createConnection({ host: peerHost, port }, () => exchange(socket).then((seconds) => { socket.end(); resolve(seconds); }));
  });
}

async function rawTcp(role: string, size: number, totalBytes: number, port: number, peerHost: string): Promise<number> {
  if (role === 'b') {
    return new Promise((resolve) => {
      const server = createServer((socket) => {
        // The first half warms up (JIT, TCP window), as the other measurements' warm-up pass does.
        let received = 0;
        let started = 0;
        socket.on('data', (chunk) => {
          received += chunk.length;
          if (!started && received >= totalBytes) started = performance.now();
          if (received >= 2 * totalBytes) {
            const seconds = (performance.now() - started) / 1000;
            socket.end('k', () => server.close());
            resolve(seconds);
          }
        });
      });
      server.listen(port, '0.0.0.0', () => process.stdout.write('ready\n'));
    });
  }
  const buffer = Buffer.alloc(size, 7);
  return new Promise((resolve) => {
    const socket = createConnection({ host: peerHost, port }, () => {
      let sent = 0;
      const pump = () => {
        while (sent < 2 * totalBytes) {
          sent += size;
          if (!socket.write(buffer)) return socket.once('drain', pump);
        }
      };
      pump();
    });
    socket.on('data', () => { socket.end(); resolve(0); });
  });
}

async function overPeers(role: string, kind: string, size: number, totalBytes: number, ports: [number, number], hosts: [string, string]): Promise<{ seconds: number; copies: object }> {
  const floats = size / 4;
  const rows = 64;
  const cols = floats / rows;
  const rank = role === 'a' ? 0 : 1;
  const count = Math.max(1, Math.round(totalBytes / size));
  const node = await PeerNode.start({
    rank,
    peers: [{ host: hosts[0], port: ports[0] }, { host: hosts[1], port: ports[1] }],
    secret: 'bench', planHash: 'bench', tileDevice: [0, 1], peerTimeoutMs: 60000,
    maxChunkFloats: Number(process.env.BENCH_CHUNK_FLOATS ?? 1 << 16),
    validator: {
      strip: (s, n) => (s.from === 0 && s.to === 1 && n === (s.region.rows.end - s.region.rows.start) * cols ? null : 'not a bench strip'),
      reduce: (r, n) => (r.offset + n <= floats ? null : 'outside'),
    },
  });
  const region = { rows: { start: 0, end: rows }, cols: { start: 0, end: cols } };
  const source = new Float32Array(floats).fill(1.5);
  const sink = new Float32Array(floats);
  // A warm-up pass fills the writer pool and grows the heap, as the first step of training does.
  let seconds = 0;
  for (const pass of [0, 1]) {
    await node.barrier(2 * pass);
    const started = performance.now();
    if (kind === 'strip') {
      if (rank === 0) for (let i = 0; i < count; i++) node.sendStrip({ step: pass * count + i, phase: 'halo', group: 1, from: 0, to: 1 }, region, floats, (t, band) => t.set(source.subarray(band.rows.start * cols, band.rows.end * cols)));
      else await Promise.all(Array.from({ length: count }, (_, i) => node.expectStrip({ step: pass * count + i, phase: 'halo', group: 1, from: 0, to: 1 }, region, floats, (s, band) => sink.set(s, band.rows.start * cols))));
    } else {
      for (let i = 0; i < count; i++) await node.allReduceSum(`bench/${pass}/${i}`, source);
    }
    await node.barrier(2 * pass + 1);
    seconds = (performance.now() - started) / 1000;
  }
  const copies = node.counters.copiesPerPayloadByte();
  node.close();
  return { seconds, copies };
}

if (values.role) {
  const size = Number(values.size);
  const totalBytes = Number(values['total-mib']) * 1048576;
  const port = Number(values.port);
  if (values.kind === 'tcp' || values.kind === 'tcp-duplex') {
    const seconds = await (values.kind === 'tcp' ? rawTcp : rawTcpDuplex)(values.role, size, totalBytes, port, values['peer-host']!);
    if (values.role === 'b') process.stdout.write(`${JSON.stringify({ seconds })}\n`);
  } else {
    const hosts: [string, string] = values.role === 'a' ? [values.host!, values['peer-host']!] : [values['peer-host']!, values.host!];
    const result = await overPeers(values.role, values.kind!, size, totalBytes, [port, port + 1], hosts);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  process.exit(0);
}

// ---- orchestration ---------------------------------------------------------------------------

interface Placement { name: string; prefix: (side: 'a' | 'b') => string[]; hostOf: (side: 'a' | 'b') => string }

function run(placement: Placement, side: 'a' | 'b', args: string[]): { done: Promise<string>; ready: Promise<void> } {
  const [command, ...rest] = [...placement.prefix(side), process.execPath, process.argv[1]!, '--role', side, ...args];
  const child = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let readyResolve: () => void;
  const ready = new Promise<void>((r) => (readyResolve = r));
  child.stdout!.on('data', (d) => {
    out += d;
    if (out.includes('ready')) readyResolve();
  });
  const done = new Promise<string>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${side} exited ${code}`)))));
  return { done, ready };
}

async function measure(placement: Placement, kind: string, size: number, port: number): Promise<Record<string, unknown>> {
  const args = ['--kind', kind, '--size', String(size), '--total-mib', values['total-mib']!, '--port', String(port)];
  const b = run(placement, 'b', [...args, '--host', placement.hostOf('b'), '--peer-host', placement.hostOf('a')]);
  if (kind.startsWith('tcp')) await b.ready;
  const a = run(placement, 'a', [...args, '--host', placement.hostOf('a'), '--peer-host', placement.hostOf('b')]);
  const [outA, outB] = await Promise.all([a.done, b.done]);
  const lastJson = (text: string) => JSON.parse(text.trim().split('\n').filter((l) => l.startsWith('{')).pop()!);
  const result = lastJson(outB);
  const bytes = Math.max(1, Math.round((Number(values['total-mib']) * 1048576) / size)) * size;
  // For the all-reduce, each device sends (and receives) the whole array once per reduction over 2 devices.
  const goodputMiBs = bytes / 1048576 / result.seconds;
  return { placement: placement.name, kind, messageBytes: size, seconds: result.seconds, goodputMiBs: Number(goodputMiBs.toFixed(1)), ...(kind.startsWith('tcp') ? {} : { copiesReceiving: result.copies, copiesSending: lastJson(outA).copies }) };
}

function setUpNamespaces(): Placement | null {
  const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { stdio: 'pipe' });
  try {
    sh('ip netns del efbench-a 2>/dev/null; ip netns del efbench-b 2>/dev/null; true');
    sh('ip netns add efbench-a && ip netns add efbench-b');
    sh('ip link add efb-a type veth peer name efb-b && ip link set efb-a netns efbench-a && ip link set efb-b netns efbench-b');
    sh('ip -n efbench-a addr add 10.199.0.1/24 dev efb-a && ip -n efbench-b addr add 10.199.0.2/24 dev efb-b');
    sh('ip -n efbench-a link set efb-a up && ip -n efbench-b link set efb-b up && ip -n efbench-a link set lo up && ip -n efbench-b link set lo up');
    // Pi 3 Ethernet: 100 Mbit/s each way.
    sh('ip netns exec efbench-a tc qdisc add dev efb-a root tbf rate 100mbit burst 64kb latency 50ms');
    sh('ip netns exec efbench-b tc qdisc add dev efb-b root tbf rate 100mbit burst 64kb latency 50ms');
  } catch (error) {
    process.stderr.write(`network namespaces unavailable (${(error as Error).message.split('\n')[0]}); loopback only\n`);
    tearDownNamespaces();
    return null;
  }
  return {
    name: 'veth 100 Mbit/s',
    prefix: (side) => ['ip', 'netns', 'exec', `efbench-${side}`],
    hostOf: (side) => (side === 'a' ? '10.199.0.1' : '10.199.0.2'),
  };
}

function tearDownNamespaces(): void {
  try {
    execFileSync('sh', ['-c', 'ip netns del efbench-a 2>/dev/null; ip netns del efbench-b 2>/dev/null; true']);
  } catch {
    // nothing to clean
  }
}

const loopback: Placement = { name: 'loopback', prefix: () => [], hostOf: () => '127.0.0.1' };
const placements: Placement[] = [loopback];
const netns = values['no-netns'] ? null : setUpNamespaces();
if (netns) placements.push(netns);
process.on('exit', () => netns && tearDownNamespaces());
const rows: Record<string, unknown>[] = [];
let port = 9400;
try {
  for (const placement of placements) {
    for (const size of values.sizes!.split(',').map(Number)) {
      // Strips flow one way, so they compare with one-way TCP; the all-reduce sends and receives at
      // once, so it compares with TCP carrying the same bytes both ways at once. The four are
      // alternated `repeats` times and the medians kept: this machine is shared and noisy.
      const samples: Record<string, Record<string, unknown>[]> = { tcp: [], 'tcp-duplex': [], strip: [], allreduce: [] };
      for (let r = 0; r < Number(values.repeats); r++) {
        for (const kind of Object.keys(samples)) samples[kind]!.push(await measure(placement, kind, size, (port += 3)));
      }
      const median = (kind: string): Record<string, unknown> => {
        const sorted = [...samples[kind]!].sort((x, y) => (x.goodputMiBs as number) - (y.goodputMiBs as number));
        return { ...sorted[Math.floor(sorted.length / 2)]!, samplesMiBs: samples[kind]!.map((x) => x.goodputMiBs) };
      };
      const [tcp, duplex, strip, reduce] = [median('tcp'), median('tcp-duplex'), median('strip'), median('allreduce')];
      strip.ofRawTcp = Number(((strip.goodputMiBs as number) / (tcp.goodputMiBs as number)).toFixed(3));
      reduce.ofRawTcp = Number(((reduce.goodputMiBs as number) / (duplex.goodputMiBs as number)).toFixed(3));
      rows.push(tcp, duplex, strip, reduce);
      process.stderr.write(`${placement.name} ${size} B: tcp ${tcp.goodputMiBs} MiB/s, tcp both ways ${duplex.goodputMiBs} MiB/s each, strip ${strip.goodputMiBs} MiB/s (${strip.ofRawTcp} of tcp), all-reduce ${reduce.goodputMiBs} MiB/s each way (${reduce.ofRawTcp} of tcp both ways)\n`);
    }
  }
} finally {
  if (netns) tearDownNamespaces();
}
mkdirSync(dirname(values.out!), { recursive: true });
writeFileSync(values.out!, JSON.stringify({ totalMiB: Number(values['total-mib']), rows }, null, 2));
console.log(JSON.stringify({ rows }));
