// One device's transport: a uWebSockets.js listener that receives from every peer, and one `ws`
// client per peer that sends to it. Links authenticate with an HMAC challenge/response over the
// shared secret and must agree on the plan hash. Every received message is decoded with bounds
// checks and validated against the plan before any byte of it is used; a bad message is counted,
// logged with the peer and reason, and its link is closed. A dead or silent peer fails every pending
// operation with an error that names it.
import uWS from 'uWebSockets.js';
import WebSocket from 'ws';
import type { Region } from '../tiles/region.js';
import { authProof, newChallenge, proofMatches } from './auth.js';
import { type Decoded, MessageWriter, type ReduceFields, type StripFields, WireError, decode } from './codec.js';
import { TransportCounters } from './counters.js';
import { type Exchange, type Gather, type Scatter, type StripAddress, stripKey } from './exchange.js';
import { createInMemoryCluster } from './in-memory.js';
import { type LinkMeasurement, type ProbeLink, type ProbeOptions, measureLinks } from './link-probe.js';
import { Mailbox } from './mailbox.js';
import { type ReduceLink, ringAllReduce } from './ring-all-reduce.js';
import { rowBands } from './row-bands.js';

// 2: link measurement messages (ping, pong, probe-ack, link probe) at cluster start.
export const PROTOCOL_VERSION = 'edgefuse-2';

/** Most chunks one link-measurement burst may announce. */
const MAX_PROBE_CHUNKS = 256;
/** Replies (pongs, burst acknowledgements) held while our own link to that peer is still authenticating. */
const MAX_PENDING_REPLIES = 64;

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Plan checks of received data messages; each returns a reason for rejection or null. */
export interface MessageValidator {
  strip(fields: StripFields, floats: number, senderRank: number, myRank: number): string | null;
  reduce(fields: ReduceFields, floats: number, senderRank: number): string | null;
}

export interface PeerNodeOptions {
  readonly rank: number;
  readonly peers: readonly PeerAddress[];
  readonly secret: string;
  readonly planHash: string;
  readonly clusterId?: string;
  readonly validator: MessageValidator;
  /** Device rank of every strip endpoint: the plan's tiles, then the head when there is a tail (stripEndpoints). */
  readonly tileDevice: readonly number[];
  /** Listen address (default: this rank's entry of `peers`, on all interfaces). */
  readonly listenHost?: string;
  readonly listenPort?: number;
  readonly heartbeatMs?: number;
  /** A peer silent for this long is declared dead. */
  readonly peerTimeoutMs?: number;
  /** How long start() keeps dialing peers that are not up yet. */
  readonly connectTimeoutMs?: number;
  /** Largest float payload of one message; larger strips and reductions are cut into chunks. */
  readonly maxChunkFloats?: number;
  readonly maxBackpressureBytes?: number;
  readonly maxEarlyBytes?: number;
  readonly log?: (line: string) => void;
}

export class PeerFailure extends Error {
  override name = 'PeerFailure';
  constructor(readonly peerRank: number, readonly peer: string, reason: string) {
    super(`peer ${peerRank} (${peer}) ${reason}`);
  }
}

interface InboundData {
  peerRank: number;
  challenge: Uint8Array;
  authenticated: boolean;
  remote: string;
}

interface Outbound {
  socket: WebSocket | null;
  challenge: Uint8Array;
  authenticated: boolean;
  queue: { writer: MessageWriter; bytes: Uint8Array }[];
}

const HANDSHAKE_REJECT = 4001;
const PROTOCOL_REJECT = 4002;
const GOING_AWAY = 1001;

export class PeerNode implements Exchange {
  readonly rank: number;
  readonly size: number;
  readonly counters = new TransportCounters();
  private readonly options: Required<Omit<PeerNodeOptions, 'listenHost' | 'listenPort' | 'log'>> & Pick<PeerNodeOptions, 'log'>;
  private readonly app: uWS.TemplatedApp;
  private listenSocket: uWS.us_listen_socket | null = null;
  private port = 0;
  private readonly inbound = new Map<number, uWS.WebSocket<InboundData>>();
  private readonly outbound = new Map<number, Outbound>();
  private readonly lastHeard = new Map<number, number>();
  private readonly strips: Mailbox;
  private readonly reductions: Mailbox;
  /** For handshake replies through uWS, which copies what it sends. */
  private readonly writer = new MessageWriter();
  private readonly freeWriters: MessageWriter[] = [];
  /** Strips between tiles of this device never leave the process. */
  private readonly local: Exchange;
  private readonly barriers = new Map<number, Set<number>>();
  private readonly barrierWaiters = new Map<number, () => void>();
  private failure: Error | null = null;
  /** Peers that shut down cleanly; they are not heartbeat-checked any more. */
  private readonly departed = new Set<number>();
  private failureListeners: ((error: Error) => void)[] = [];
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Pongs and burst acknowledgements awaited by the link measurement, by `pong|ack/peer/id`. */
  private readonly probeWaiters = new Map<string, { resolve: () => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  private nextProbeId = 1;
  private readonly pendingReplies = new Map<number, ((writer: MessageWriter) => Uint8Array)[]>();
  private readyResolve: (() => void) | null = null;
  private readyReject: ((e: Error) => void) | null = null;

  private constructor(options: PeerNodeOptions) {
    this.rank = options.rank;
    this.size = options.peers.length;
    this.options = {
      clusterId: 'edgefuse',
      heartbeatMs: 500,
      peerTimeoutMs: 5000,
      connectTimeoutMs: 30000,
      maxChunkFloats: 1 << 16,
      maxBackpressureBytes: 8 << 20,
      maxEarlyBytes: 512 << 20,
      ...options,
    };
    this.strips = new Mailbox(this.counters, this.options.maxEarlyBytes);
    Object.assign(this.reduceLink, { rank: this.rank, size: this.size });
    Object.assign(this.probeLink, { rank: this.rank, size: this.size });
    this.local = createInMemoryCluster(1, options.tileDevice.map(() => 0))[0]!;
    this.reductions = new Mailbox(this.counters, this.options.maxEarlyBytes);
    const maxPayloadLength = this.options.maxChunkFloats * 4 + 4096;
    this.app = uWS.App().ws<InboundData>('/*', {
      compression: uWS.DISABLED,
      maxPayloadLength,
      maxBackpressure: this.options.maxBackpressureBytes,
      idleTimeout: 0, // our own heartbeats detect silent peers
      sendPingsAutomatically: false,
      upgrade: (res, req, context) => {
        res.upgrade<InboundData>(
          { peerRank: -1, challenge: newChallenge(), authenticated: false, remote: Buffer.from(res.getRemoteAddressAsText()).toString() },
          req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context,
        );
      },
      open: (ws) => {
        const data = ws.getUserData();
        ws.send(this.writer.hello({ clusterId: this.options.clusterId, rank: this.rank, version: PROTOCOL_VERSION, planHash: this.options.planHash, challenge: data.challenge, proof: new Uint8Array() }), true);
      },
      message: (ws, message) => this.onInbound(ws, message),
      close: (ws, code, message) => this.onInboundClose(ws, code, Buffer.from(message).toString()),
    });
  }

  /** Listen, dial every peer and authenticate all links. Rejects naming the peers that never came up. */
  static async start(options: PeerNodeOptions): Promise<PeerNode> {
    const node = new PeerNode(options);
    const me = options.peers[options.rank];
    if (!me) throw new Error(`rank ${options.rank} is outside the ${options.peers.length} peers`);
    await node.listen(options.listenHost ?? '0.0.0.0', options.listenPort ?? me.port);
    try {
      await node.connectAll();
    } catch (error) {
      node.close();
      throw error;
    }
    node.heartbeatTimer = setInterval(() => node.heartbeat(), node.options.heartbeatMs);
    return node;
  }

  get listenPort(): number {
    return this.port;
  }

  private listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`cannot listen on ${host}:${port} (in use, or not an address of this machine)`));
        this.listenSocket = socket;
        this.port = uWS.us_socket_local_port(socket);
        resolve();
      });
    });
  }

  private peerName(rank: number): string {
    const p = this.options.peers[rank];
    return p ? `${p.host}:${p.port}` : `rank ${rank}`;
  }

  private log(line: string): void {
    this.options.log?.(`[rank ${this.rank}] ${line}`);
  }

  // ---- start-up -------------------------------------------------------------------------------

  private connectAll(): Promise<void> {
    if (this.size === 1) return Promise.resolve();
    const deadline = Date.now() + this.options.connectTimeoutMs;
    for (let peer = 0; peer < this.size; peer++) {
      if (peer === this.rank) continue;
      this.outbound.set(peer, { socket: null, challenge: newChallenge(), authenticated: false, queue: [] });
      this.dial(peer, deadline);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const missing = [...Array(this.size).keys()].filter((p) => p !== this.rank && !(this.outbound.get(p)?.authenticated && this.inbound.has(p)));
        reject(new Error(`peers not connected after ${this.options.connectTimeoutMs} ms: ${missing.map((p) => `rank ${p} (${this.peerName(p)})`).join(', ')}`));
      }, this.options.connectTimeoutMs);
      const done = () => clearTimeout(timer);
      this.readyResolve = () => { done(); resolve(); };
      this.readyReject = (e) => { done(); reject(e); };
      this.checkReady();
    });
  }

  private checkReady(): void {
    if (!this.readyResolve) return;
    for (let p = 0; p < this.size; p++) {
      if (p === this.rank) continue;
      if (!this.outbound.get(p)?.authenticated || !this.inbound.has(p)) return;
    }
    const resolve = this.readyResolve;
    this.readyResolve = this.readyReject = null;
    const now = Date.now();
    for (let p = 0; p < this.size; p++) this.lastHeard.set(p, now);
    resolve();
  }

  private startupFailed(error: Error): void {
    const reject = this.readyReject;
    this.readyResolve = this.readyReject = null;
    reject?.(error);
  }

  private dial(peer: number, deadline: number): void {
    if (this.closed) return;
    const address = this.options.peers[peer]!;
    const link = this.outbound.get(peer)!;
    const socket = new WebSocket(`ws://${address.host}:${address.port}/peer`, {
      perMessageDeflate: false,
      maxPayload: this.options.maxChunkFloats * 4 + 4096,
      // Inside a cluster there is no proxy to poison: a zero mask lets ws send our buffer as is
      // instead of copying it to apply the mask.
      generateMask: (mask: Buffer) => void mask.fill(0),
    });
    socket.binaryType = 'arraybuffer';
    link.socket = socket;
    let opened = false;
    socket.on('open', () => (opened = true));
    socket.on('message', (data) => this.onOutboundMessage(peer, socket, data as ArrayBuffer));
    socket.on('error', () => undefined); // 'close' follows and decides
    socket.on('close', (code, reason) => {
      const text = reason.toString();
      if (!link.authenticated) {
        if (code === HANDSHAKE_REJECT) return this.startupFailed(new Error(`peer ${peer} (${this.peerName(peer)}) refused us: ${text}`));
        if (!opened && Date.now() < deadline && this.readyReject) setTimeout(() => this.dial(peer, deadline), 200);
        return;
      }
      this.linkClosed(peer, code, text);
    });
  }

  private onOutboundMessage(peer: number, socket: WebSocket, data: ArrayBuffer): void {
    const link = this.outbound.get(peer)!;
    let message: Decoded;
    try {
      message = decode(new Uint8Array(data));
    } catch (error) {
      socket.close(PROTOCOL_REJECT, 'malformed message');
      return this.startupFailed(new Error(`peer ${peer} (${this.peerName(peer)}) sent a malformed handshake: ${(error as Error).message}`));
    }
    if (message.kind !== 'hello') return; // only handshakes travel this way
    const hello = message.hello;
    const mismatch = this.helloMismatch(hello);
    if (mismatch) {
      socket.close(HANDSHAKE_REJECT, mismatch);
      return this.startupFailed(new Error(`peer ${peer} (${this.peerName(peer)}) ${mismatch}`));
    }
    if (hello.rank !== peer) {
      socket.close(HANDSHAKE_REJECT, 'wrong rank');
      return this.startupFailed(new Error(`the device at ${this.peerName(peer)} says it is rank ${hello.rank}, expected ${peer}: check --peers order`));
    }
    if (hello.proof.length === 0) {
      // The greeting: answer with our proof and our own challenge.
      const proof = authProof(this.options.secret, hello.challenge, this.rank, peer, this.options.planHash);
      socket.send(this.writer.hello({ clusterId: this.options.clusterId, rank: this.rank, version: PROTOCOL_VERSION, planHash: this.options.planHash, challenge: link.challenge, proof }));
      return;
    }
    if (!proofMatches(authProof(this.options.secret, link.challenge, peer, this.rank, this.options.planHash), hello.proof)) {
      socket.close(HANDSHAKE_REJECT, 'authentication failed');
      return this.startupFailed(new Error(`peer ${peer} (${this.peerName(peer)}) failed authentication: it does not know the cluster secret`));
    }
    link.authenticated = true;
    for (const encode of this.pendingReplies.get(peer) ?? []) this.reply(peer, encode);
    this.pendingReplies.delete(peer);
    this.checkReady();
  }

  private helloMismatch(hello: { clusterId: string; version: string; planHash: string }): string | null {
    if (hello.version !== PROTOCOL_VERSION) return `speaks protocol ${hello.version}, we speak ${PROTOCOL_VERSION}`;
    if (hello.clusterId !== this.options.clusterId) return `is in cluster "${hello.clusterId}", we are in "${this.options.clusterId}"`;
    if (hello.planHash !== this.options.planHash) return `has plan hash ${hello.planHash}, ours is ${this.options.planHash}: every device must be started with the same model and plan flags`;
    return null;
  }

  // ---- receiving -----------------------------------------------------------------------------

  private reject(ws: uWS.WebSocket<InboundData>, reason: string): void {
    const data = ws.getUserData();
    this.counters.reject(reason);
    this.log(`rejected a message from ${data.peerRank >= 0 ? `rank ${data.peerRank}` : 'an unauthenticated peer'} at ${data.remote}: ${reason}`);
    ws.end(PROTOCOL_REJECT, reason.slice(0, 120));
  }

  private onInbound(ws: uWS.WebSocket<InboundData>, bytes: ArrayBuffer): void {
    const data = ws.getUserData();
    let message: Decoded;
    try {
      // The ArrayBuffer dies when this callback returns: everything below consumes it synchronously.
      message = decode(new Uint8Array(bytes));
    } catch (error) {
      return this.reject(ws, `malformed: ${(error as WireError).message}`);
    }
    if (!data.authenticated) return this.onInboundHello(ws, data, message);
    const peer = data.peerRank;
    this.lastHeard.set(peer, Date.now());
    const traffic = this.counters.peer(peer);
    traffic.bytesReceived += bytes.byteLength;
    traffic.messagesReceived++;
    switch (message.kind) {
      case 'strip': {
        const problem = this.options.validator.strip(message.strip, message.payload.length, peer, this.rank);
        if (problem) return this.reject(ws, `out-of-plan: ${problem}`);
        const s = message.strip;
        const key = stripKey({ step: s.step, phase: s.phase, group: s.group, from: s.from, to: s.to });
        const failed = this.strips.receive(key, message.payload, s.region);
        this.counters.payloadBytesReceived += message.payload.byteLength;
        if (failed) return this.reject(ws, failed);
        return;
      }
      case 'reduce': {
        const r = message.reduce;
        const previous = (this.rank - 1 + this.size) % this.size;
        if (peer !== previous) return this.reject(ws, `out-of-plan: reduce chunk from rank ${peer}, only rank ${previous} sends to us`);
        if (r.round < 0 || r.round >= 2 * (this.size - 1)) return this.reject(ws, `out-of-plan: reduce round ${r.round} outside 0..${2 * (this.size - 1) - 1}`);
        const problem = this.options.validator.reduce(r, message.payload.length, peer);
        if (problem) return this.reject(ws, `out-of-plan: ${problem}`);
        const key = `${r.bucket}/${r.round}/${r.offset}`;
        const band = { rows: { start: 0, end: 1 }, cols: { start: 0, end: message.payload.length } };
        const failed = this.reductions.receive(key, message.payload, band);
        this.counters.payloadBytesReceived += message.payload.byteLength;
        if (failed) return this.reject(ws, failed);
        return;
      }
      case 'control':
        if (message.control === 'heartbeat') return;
        if (message.control === 'abort') return this.peerFailed(peer, `aborted: ${message.reason}`);
        if (message.control === 'ping') return this.reply(peer, (w) => w.control('pong', message.epoch));
        if (message.control === 'pong') return this.probeArrived(`pong/${peer}/${message.epoch}`);
        if (message.control === 'probe-ack') return this.probeArrived(`ack/${peer}/${message.epoch}`);
        return this.onBarrier(peer, message.epoch);
      case 'probe': {
        const p = message.probe;
        if (p.chunks < 1 || p.chunks > MAX_PROBE_CHUNKS || p.chunk >= p.chunks) return this.reject(ws, `out-of-plan: link probe chunk ${p.chunk} of ${p.chunks} (at most ${MAX_PROBE_CHUNKS})`);
        if (message.payload.length > this.options.maxChunkFloats) return this.reject(ws, `out-of-plan: link probe of ${message.payload.length} floats, chunks are at most ${this.options.maxChunkFloats}`);
        // The link is ordered: the last chunk arriving means the whole burst has.
        if (p.chunk === p.chunks - 1) this.reply(peer, (w) => w.control('probe-ack', p.id));
        return;
      }
      case 'hello':
        return this.reject(ws, 'unexpected: hello on an authenticated link');
      case 'input':
        return this.reject(ws, 'unexpected: input regions are not part of this plan');
    }
  }

  private onInboundHello(ws: uWS.WebSocket<InboundData>, data: InboundData, message: Decoded): void {
    if (message.kind !== 'hello') return this.reject(ws, `unauthenticated: ${message.kind} before the handshake`);
    const hello = message.hello;
    const mismatch = this.helloMismatch(hello);
    if (mismatch) {
      this.counters.reject('handshake');
      this.log(`refused ${data.remote}: it ${mismatch}`);
      return ws.end(HANDSHAKE_REJECT, mismatch.slice(0, 120));
    }
    if (!Number.isInteger(hello.rank) || hello.rank < 0 || hello.rank >= this.size || hello.rank === this.rank) {
      return this.reject(ws, `handshake: rank ${hello.rank} is not a peer of this cluster`);
    }
    if (!proofMatches(authProof(this.options.secret, data.challenge, hello.rank, this.rank, this.options.planHash), hello.proof)) {
      this.counters.reject('authentication');
      this.log(`refused ${data.remote} claiming rank ${hello.rank}: wrong cluster secret`);
      return ws.end(HANDSHAKE_REJECT, 'authentication failed');
    }
    data.authenticated = true;
    data.peerRank = hello.rank;
    const previous = this.inbound.get(hello.rank);
    this.inbound.set(hello.rank, ws);
    if (previous) previous.end(PROTOCOL_REJECT, 'replaced by a new link');
    const proof = authProof(this.options.secret, hello.challenge, this.rank, hello.rank, this.options.planHash);
    ws.send(this.writer.hello({ clusterId: this.options.clusterId, rank: this.rank, version: PROTOCOL_VERSION, planHash: this.options.planHash, challenge: new Uint8Array(), proof }), true);
    this.checkReady();
  }

  private onInboundClose(ws: uWS.WebSocket<InboundData>, code: number, reason: string): void {
    const data = ws.getUserData();
    if (!data.authenticated || this.inbound.get(data.peerRank) !== ws) return;
    this.inbound.delete(data.peerRank);
    if (!this.readyResolve) this.linkClosed(data.peerRank, code, reason);
  }

  private waitsFor(peer: number): boolean {
    if (this.strips.waitsFor(peer) || this.reductions.waitsFor(peer)) return true;
    for (const epoch of this.barrierWaiters.keys()) if (!this.barriers.get(epoch)?.has(peer)) return true;
    return false;
  }

  /** A peer that says goodbye while nothing waits on it has left; any other close is a failure. */
  private linkClosed(peer: number, code: number, reason: string): void {
    if (this.closed) return;
    if (code === GOING_AWAY && !this.waitsFor(peer)) {
      this.departed.add(peer);
      return;
    }
    this.peerFailed(peer, `closed its link (code ${code}${reason ? `, ${reason}` : ''})`);
  }

  // ---- failure -------------------------------------------------------------------------------

  private heartbeat(): void {
    if (this.failure || this.closed) return;
    const now = Date.now();
    for (let p = 0; p < this.size; p++) {
      if (p === this.rank || this.departed.has(p)) continue;
      try {
        this.sendMessage(p, (w) => w.control('heartbeat', 0));
      } catch {
        // the link is gone; its close handler reports the peer
      }
      const silent = now - (this.lastHeard.get(p) ?? now);
      if (silent > this.options.peerTimeoutMs) return this.peerFailed(p, `has been silent for ${silent} ms (timeout ${this.options.peerTimeoutMs} ms)`);
    }
  }

  private peerFailed(peer: number, reason: string): void {
    if (this.failure || this.closed) return;
    const error = new PeerFailure(peer, this.peerName(peer), reason);
    this.failure = error;
    this.log(error.message);
    this.strips.failAll(error);
    this.reductions.failAll(error);
    this.failProbes(error);
    for (const wake of this.barrierWaiters.values()) wake();
    for (const listener of this.failureListeners) listener(error);
  }

  /** The first peer failure, if any: once set, every operation fails with it. */
  get failed(): Error | null {
    return this.failure;
  }

  onFailure(listener: (error: Error) => void): void {
    if (this.failure) listener(this.failure);
    else this.failureListeners.push(listener);
  }

  /** Tell every peer we stop, with the reason (they fail their step naming us). */
  abort(reason: string): void {
    for (let p = 0; p < this.size; p++) {
      if (p === this.rank) continue;
      try {
        this.sendMessage(p, (w) => w.control('abort', 0, reason));
      } catch {
        // best effort: that peer is unreachable anyway
      }
    }
  }

  // ---- sending -------------------------------------------------------------------------------

  /**
   * Encode with a pooled writer and hand its bytes to the peer's socket. ws keeps a reference to the
   * bytes until the kernel has them, so the writer returns to the pool only in the write callback:
   * the bytes are never copied again in user space. Past maxBackpressure, encoded messages wait in
   * our queue and are flushed as the socket drains.
   */
  private sendMessage(peer: number, encode: (writer: MessageWriter) => Uint8Array): void {
    const link = this.outbound.get(peer);
    if (!link?.socket || !link.authenticated || link.socket.readyState !== WebSocket.OPEN) {
      throw this.failure ?? new PeerFailure(peer, this.peerName(peer), 'has no open link');
    }
    const writer = this.freeWriters.pop() ?? new MessageWriter(this.options.maxChunkFloats * 4 + 1024);
    const bytes = encode(writer);
    const traffic = this.counters.peer(peer);
    traffic.bytesSent += bytes.byteLength;
    traffic.messagesSent++;
    if (link.queue.length > 0 || link.socket.bufferedAmount > this.options.maxBackpressureBytes) {
      this.counters.backpressureEvents++;
      link.queue.push({ writer, bytes });
      return;
    }
    this.write(peer, link, writer, bytes);
  }

  private write(peer: number, link: Outbound, writer: MessageWriter, bytes: Uint8Array): void {
    link.socket!.send(bytes, { binary: true }, () => {
      this.freeWriters.push(writer);
      // Drain our queue while the socket is below the limit.
      while (link.queue.length > 0 && link.socket && link.socket.readyState === WebSocket.OPEN && link.socket.bufferedAmount <= this.options.maxBackpressureBytes / 2) {
        const next = link.queue.shift()!;
        this.write(peer, link, next.writer, next.bytes);
      }
    });
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private deviceOfTile(tile: number): number {
    const device = this.options.tileDevice[tile];
    if (device === undefined) throw new Error(`tile ${tile} is not in the plan (${this.options.tileDevice.length} tiles)`);
    return device;
  }

  sendStrip(address: StripAddress, region: Region, floats: number, gather: Gather): void {
    this.throwIfFailed();
    const peer = this.deviceOfTile(address.to);
    if (this.deviceOfTile(address.from) !== this.rank) throw new Error(`tile ${address.from} does not live on device ${this.rank}`);
    if (peer === this.rank) return this.local.sendStrip(address, region, floats, gather);
    for (const band of rowBands(region, floats, this.options.maxChunkFloats)) {
      const bandFloats = (floats / Math.max(1, region.rows.end - region.rows.start)) * (band.rows.end - band.rows.start);
      const fields = { step: address.step, image: 0, phase: address.phase, group: address.group, from: address.from, to: address.to, region: band };
      this.sendMessage(peer, (w) => w.strip(fields, bandFloats, (target) => gather(target, band)));
      this.counters.payloadBytesSent += bandFloats * 4;
      this.counters.copiedBytesSending += bandFloats * 4;
    }
  }

  expectStrip(address: StripAddress, region: Region, floats: number, scatter: Scatter): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.deviceOfTile(address.from) === this.rank) return this.local.expectStrip(address, region, floats, scatter);
    return this.strips.expect(stripKey(address), this.deviceOfTile(address.from), region, floats, scatter);
  }

  async allReduceSum(key: string, values: Float32Array): Promise<void> {
    this.throwIfFailed();
    await ringAllReduce(this.reduceLink, key, values, this.options.maxChunkFloats);
  }

  private readonly reduceLink: ReduceLink = {
    rank: -1, // set in the constructor
    size: -1,
    sendChunk: (bucket, round, offset, count, gather) => {
      this.throwIfFailed();
      const next = (this.rank + 1) % this.size;
      this.sendMessage(next, (w) => w.reduce({ step: 0, bucket, round, offset }, count, gather));
      this.counters.payloadBytesSent += count * 4;
      this.counters.copiedBytesSending += count * 4;
    },
    expectChunk: (bucket, round, offset, count, consume) => {
      if (this.failure) return Promise.reject(this.failure);
      const band = { rows: { start: 0, end: 1 }, cols: { start: 0, end: count } };
      const previous = (this.rank - 1 + this.size) % this.size;
      return this.reductions.expect(`${bucket}/${round}/${offset}`, previous, band, count, (source) => consume(source));
    },
  };

  /**
   * Waits until every device has entered barrier `epoch`: true then, false when `timeoutMs` passed
   * first (the epoch is then abandoned: a later arrival for it is only recorded).
   */
  async barrier(epoch: number, timeoutMs = Infinity): Promise<boolean> {
    this.throwIfFailed();
    for (let p = 0; p < this.size; p++) if (p !== this.rank) this.sendMessage(p, (w) => w.control('barrier', epoch));
    const seen = this.barriers.get(epoch);
    let met = true;
    if (!seen || seen.size < this.size - 1) {
      let timer: NodeJS.Timeout | undefined;
      met = await new Promise<boolean>((resolve) => {
        this.barrierWaiters.set(epoch, () => resolve(true));
        if (Number.isFinite(timeoutMs)) timer = setTimeout(() => resolve(false), timeoutMs);
      });
      clearTimeout(timer);
    }
    this.barrierWaiters.delete(epoch);
    this.barriers.delete(epoch);
    this.throwIfFailed();
    return met;
  }

  // ---- link measurement (once, when the cluster starts) ----------------------------------------

  /** Round trips and a short burst to every peer (link-probe.ts); call with no step running. */
  measureLinks(options: ProbeOptions = {}): Promise<LinkMeasurement[]> {
    return measureLinks(this.probeLink, options);
  }

  private readonly probeLink: ProbeLink = {
    rank: -1, // set in the constructor
    size: -1,
    peerName: (peer) => this.peerName(peer),
    roundTrip: (peer, timeoutMs) => {
      const id = this.nextProbeId++;
      const key = `pong/${peer}/${id}`;
      const arrived = this.waitProbe(key, timeoutMs, `no reply to a ping from rank ${peer} within ${Math.round(timeoutMs)} ms`);
      this.sendProbe(key, peer, (w) => w.control('ping', id));
      return arrived;
    },
    burst: (peer, floats, timeoutMs) => {
      const id = this.nextProbeId++;
      const chunk = this.options.maxChunkFloats;
      const chunks = Math.max(1, Math.ceil(floats / chunk));
      if (chunks > MAX_PROBE_CHUNKS) throw new Error(`a burst of ${floats} floats needs ${chunks} chunks, at most ${MAX_PROBE_CHUNKS}`);
      const key = `ack/${peer}/${id}`;
      const acknowledged = this.waitProbe(key, timeoutMs, `rank ${peer} did not acknowledge a ${floats * 4}-byte burst within ${Math.round(timeoutMs)} ms`);
      for (let c = 0; c < chunks; c++) this.sendProbe(key, peer, (w) => w.probe({ id, chunk: c, chunks }, Math.min(chunk, floats - c * chunk)));
      return acknowledged;
    },
    barrier: (epoch, timeoutMs) => this.barrier(epoch, timeoutMs),
  };

  /** Sends a measurement message; when the send fails, the reply awaited under `key` fails with it. */
  private sendProbe(key: string, peer: number, encode: (writer: MessageWriter) => Uint8Array): void {
    try {
      this.sendMessage(peer, encode);
    } catch (error) {
      const waiter = this.probeWaiters.get(key);
      this.probeWaiters.delete(key);
      if (waiter) {
        clearTimeout(waiter.timer);
        waiter.reject(error as Error);
      }
    }
  }

  private waitProbe(key: string, timeoutMs: number, timeoutMessage: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.probeWaiters.delete(key);
        reject(new Error(timeoutMessage));
      }, timeoutMs);
      this.probeWaiters.set(key, { resolve, reject, timer });
    });
  }

  private probeArrived(key: string): void {
    const waiter = this.probeWaiters.get(key);
    if (!waiter) return; // late (timed out) or unasked: harmless
    this.probeWaiters.delete(key);
    clearTimeout(waiter.timer);
    waiter.resolve();
  }

  private failProbes(error: Error): void {
    for (const waiter of this.probeWaiters.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.probeWaiters.clear();
  }

  /**
   * Answers a peer's measurement message over our link to it. That link may still be finishing its
   * handshake (the peer's link to us authenticated first): the reply then waits for it.
   */
  private reply(peer: number, encode: (writer: MessageWriter) => Uint8Array): void {
    const link = this.outbound.get(peer);
    if (!link?.authenticated) {
      const pending = this.pendingReplies.get(peer) ?? [];
      if (pending.length < MAX_PENDING_REPLIES) pending.push(encode);
      this.pendingReplies.set(peer, pending);
      return;
    }
    try {
      this.sendMessage(peer, encode);
    } catch {
      // the link is gone; its close handler reports the peer
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    for (const link of this.outbound.values()) link.socket?.close(GOING_AWAY, 'shutting down');
    for (const ws of this.inbound.values()) ws.end(GOING_AWAY, 'shutting down');
    if (this.listenSocket) uWS.us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    this.strips.failAll(new Error('transport closed'));
    this.reductions.failAll(new Error('transport closed'));
    this.failProbes(new Error('transport closed'));
  }

  private onBarrier(peer: number, epoch: number): void {
    let seen = this.barriers.get(epoch);
    if (!seen) this.barriers.set(epoch, (seen = new Set()));
    seen.add(peer);
    if (seen.size === this.size - 1) this.barrierWaiters.get(epoch)?.();
  }
}
