// Encoding and checked decoding of wire messages (schema/tiles.fbs). Float payloads are written by a
// caller-supplied gather straight into the builder's buffer and read as Float32Array views on the
// received bytes. The JS FlatBuffers runtime has no verifier, so decode() checks every offset it
// follows against the message size before reading: a malformed message is an error, never a wild read.
import { Builder, ByteBuffer } from 'flatbuffers';
import {
  Body, Control, ControlKind, Hello, InputRegion, LinkProbe, Message, ReduceChunk, RegionBox, Strip, StripPhase,
} from './wire/tiles_generated.js';
import type { StripPhase as Phase } from './exchange.js';
import type { Region } from '../tiles/region.js';

export const PHASES: readonly Phase[] = ['halo', 'recompute', 'grad', 'output', 'outgrad', 'input'];
const PHASE_CODES: Record<Phase, StripPhase> = {
  halo: StripPhase.Halo, recompute: StripPhase.Recompute, grad: StripPhase.Gradient, output: StripPhase.Output, outgrad: StripPhase.OutputGradient, input: StripPhase.Input,
};

export interface HelloFields {
  clusterId: string;
  rank: number;
  version: string;
  planHash: string;
  challenge: Uint8Array;
  proof: Uint8Array;
}

export interface StripFields {
  step: number;
  image: number;
  phase: Phase;
  group: number;
  from: number;
  to: number;
  region: Region;
}

export interface ReduceFields {
  step: number;
  bucket: string;
  round: number;
  offset: number;
}

export type ControlKindName = 'barrier' | 'heartbeat' | 'abort' | 'ping' | 'pong' | 'probe-ack';
const CONTROL_NAMES: readonly ControlKindName[] = ['barrier', 'heartbeat', 'abort', 'ping', 'pong', 'probe-ack'];
const CONTROL_CODES: Record<ControlKindName, ControlKind> = {
  barrier: ControlKind.Barrier, heartbeat: ControlKind.Heartbeat, abort: ControlKind.Abort, ping: ControlKind.Ping, pong: ControlKind.Pong, 'probe-ack': ControlKind.ProbeAck,
};

/** One chunk of a link-measurement burst (payload: filler). */
export interface ProbeFields {
  id: number;
  chunk: number;
  chunks: number;
}

export type Decoded =
  | { kind: 'hello'; hello: HelloFields }
  | { kind: 'strip'; strip: StripFields; payload: Float32Array }
  | { kind: 'reduce'; reduce: ReduceFields; payload: Float32Array }
  | { kind: 'input'; step: number; image: number; tile: number; region: Region; payload: Float32Array }
  | { kind: 'control'; control: ControlKindName; epoch: number; reason: string }
  | { kind: 'probe'; probe: ProbeFields; payload: Float32Array };

/** Internals of the builder that the zero-copy vector write needs (stable across flatbuffers 2.x-25.x). */
interface BuilderInternals {
  space: number;
  bb: ByteBuffer;
}

/** Builds messages in one reused buffer: a returned view is valid until the next call. */
export class MessageWriter {
  private readonly builder: Builder;

  /** Size the buffer for the largest message up front: growing it would copy every payload byte again. */
  constructor(capacityBytes = 1 << 16) {
    this.builder = new Builder(capacityBytes);
  }

  /** Reserve a [float] vector of `count` floats and let `fill` write it in place. */
  private floatVector(count: number, fill: (target: Float32Array) => void): number {
    const b = this.builder;
    b.startVector(4, count, 4);
    const internals = b as unknown as BuilderInternals;
    internals.space -= count * 4;
    const bytes = internals.bb.bytes();
    fill(new Float32Array(bytes.buffer, bytes.byteOffset + internals.space, count));
    return b.endVector();
  }

  private finish(type: Body, body: number): Uint8Array {
    const b = this.builder;
    Message.startMessage(b);
    Message.addBodyType(b, type);
    Message.addBody(b, body);
    b.finish(Message.endMessage(b));
    return b.asUint8Array();
  }

  hello(fields: HelloFields): Uint8Array {
    const b = this.builder;
    b.clear();
    const cluster = b.createString(fields.clusterId);
    const version = b.createString(fields.version);
    const plan = b.createString(fields.planHash);
    const challenge = Hello.createChallengeVector(b, fields.challenge);
    const proof = Hello.createProofVector(b, fields.proof);
    return this.finish(Body.Hello, Hello.createHello(b, cluster, fields.rank, version, plan, challenge, proof));
  }

  strip(fields: StripFields, floats: number, fill: (target: Float32Array) => void): Uint8Array {
    const b = this.builder;
    b.clear();
    const payload = this.floatVector(floats, fill);
    Strip.startStrip(b);
    Strip.addStep(b, fields.step);
    Strip.addImage(b, fields.image);
    Strip.addPhase(b, PHASE_CODES[fields.phase]);
    Strip.addGroup(b, fields.group);
    Strip.addFromTile(b, fields.from);
    Strip.addToTile(b, fields.to);
    Strip.addRegion(b, RegionBox.createRegionBox(b, fields.region.rows.start, fields.region.rows.end, fields.region.cols.start, fields.region.cols.end));
    Strip.addPayload(b, payload);
    return this.finish(Body.Strip, Strip.endStrip(b));
  }

  reduce(fields: ReduceFields, floats: number, fill: (target: Float32Array) => void): Uint8Array {
    const b = this.builder;
    b.clear();
    const payload = this.floatVector(floats, fill);
    const bucket = b.createString(fields.bucket);
    return this.finish(Body.ReduceChunk, ReduceChunk.createReduceChunk(b, fields.step, bucket, fields.round, fields.offset, payload));
  }

  probe(fields: ProbeFields, floats: number): Uint8Array {
    const b = this.builder;
    b.clear();
    const payload = this.floatVector(floats, (target) => target.fill(0));
    return this.finish(Body.LinkProbe, LinkProbe.createLinkProbe(b, fields.id, fields.chunk, fields.chunks, payload));
  }

  control(kind: ControlKindName, epoch: number, reason = ''): Uint8Array {
    const b = this.builder;
    b.clear();
    const text = b.createString(reason);
    return this.finish(Body.Control, Control.createControl(b, CONTROL_CODES[kind], epoch, text));
  }
}

export class WireError extends Error {
  override name = 'WireError';
}

/** Bounds checks for the parts of a FlatBuffer that decode() follows. */
class Checker {
  constructor(private readonly bb: ByteBuffer, private readonly size: number) {}

  need(position: number, bytes: number, what: string): void {
    if (!Number.isInteger(position) || position < 0 || position + bytes > this.size) {
      throw new WireError(`${what} at byte ${position} (+${bytes}) lies outside the ${this.size}-byte message`);
    }
  }

  /** Checks a table at `pos` and its vtable; returns the table's byte length. */
  table(pos: number, what: string): void {
    this.need(pos, 4, what);
    const vtable = pos - this.bb.readInt32(pos);
    this.need(vtable, 4, `${what} vtable`);
    const vtableBytes = this.bb.readUint16(vtable);
    const tableBytes = this.bb.readUint16(vtable + 2);
    if (vtableBytes < 4 || vtableBytes % 2) throw new WireError(`${what} vtable size ${vtableBytes} is invalid`);
    this.need(vtable, vtableBytes, `${what} vtable`);
    this.need(pos, tableBytes, what);
    for (let field = 4; field < vtableBytes; field += 2) {
      const offset = this.bb.readUint16(vtable + field);
      if (offset !== 0 && offset + 1 > tableBytes) throw new WireError(`${what} field ${(field - 4) / 2} points outside its table`);
    }
  }

  /** A vector or string field: checks the length prefix and the elements. */
  vector(tablePos: number, vtableOffset: number, elementBytes: number, what: string): void {
    const offset = this.bb.__offset(tablePos, vtableOffset);
    if (!offset) return;
    this.need(tablePos + offset, 4, what);
    const start = tablePos + offset + this.bb.readInt32(tablePos + offset);
    this.need(start, 4, `${what} length`);
    const length = this.bb.readInt32(start);
    if (length < 0) throw new WireError(`${what} has negative length ${length}`);
    this.need(start + 4, length * elementBytes, what);
    if (elementBytes === 4 && (this.bb.bytes().byteOffset + start + 4) % 4 !== 0) throw new WireError(`${what} is not 4-byte aligned`);
  }

  /** A struct field stored inline in its table. */
  struct(tablePos: number, vtableOffset: number, bytes: number, what: string): void {
    const offset = this.bb.__offset(tablePos, vtableOffset);
    if (offset) this.need(tablePos + offset, bytes, what);
  }
}

const regionOf = (box: RegionBox | null): Region =>
  box ? { rows: { start: box.row0(), end: box.row1() }, cols: { start: box.col0(), end: box.col1() } } : { rows: { start: 0, end: 0 }, cols: { start: 0, end: 0 } };

const emptyFloats = new Float32Array(0);

/** Decodes one message; throws WireError on anything malformed. Views alias `bytes`. */
export function decode(bytes: Uint8Array): Decoded {
  if (bytes.byteLength < 12) throw new WireError(`message of ${bytes.byteLength} bytes is too short`);
  if (bytes.byteOffset % 4 !== 0) throw new WireError('message does not start 4-byte aligned');
  const bb = new ByteBuffer(bytes);
  const check = new Checker(bb, bytes.byteLength);
  const root = bb.readInt32(0);
  check.table(root, 'message');
  const message = Message.getRootAsMessage(bb);
  check.struct(root, 4, 1, 'body type');
  const type = message.bodyType();
  const bodyField = bb.__offset(root, 6);
  if (!bodyField) throw new WireError('message has no body');
  check.need(root + bodyField, 4, 'body offset');
  const body = root + bodyField + bb.readInt32(root + bodyField);
  switch (type) {
    case Body.Hello: {
      check.table(body, 'hello');
      for (const [field, name] of [[4, 'cluster id'], [8, 'version'], [10, 'plan hash'], [12, 'challenge'], [14, 'proof']] as const) check.vector(body, field, 1, name);
      check.struct(body, 6, 4, 'rank');
      const h = message.body(new Hello()) as Hello;
      return {
        kind: 'hello',
        hello: {
          clusterId: h.clusterId() ?? '', rank: h.rank(), version: h.version() ?? '', planHash: h.planHash() ?? '',
          challenge: h.challengeArray() ?? new Uint8Array(), proof: h.proofArray() ?? new Uint8Array(),
        },
      };
    }
    case Body.Strip: {
      check.table(body, 'strip');
      [4, 6, 10, 12, 14].forEach((f) => check.struct(body, f, 4, 'strip field'));
      check.struct(body, 8, 1, 'strip phase');
      check.struct(body, 16, 16, 'strip region');
      check.vector(body, 18, 4, 'strip payload');
      const s = message.body(new Strip()) as Strip;
      const phase = PHASES[s.phase()];
      if (phase === undefined) throw new WireError(`strip phase ${s.phase()} is unknown`);
      return {
        kind: 'strip',
        strip: { step: s.step(), image: s.image(), phase, group: s.group(), from: s.fromTile(), to: s.toTile(), region: regionOf(s.region()) },
        payload: s.payloadArray() ?? emptyFloats,
      };
    }
    case Body.ReduceChunk: {
      check.table(body, 'reduce chunk');
      [4, 8, 10].forEach((f) => check.struct(body, f, 4, 'reduce field'));
      check.vector(body, 6, 1, 'reduce bucket');
      check.vector(body, 12, 4, 'reduce payload');
      const r = message.body(new ReduceChunk()) as ReduceChunk;
      return { kind: 'reduce', reduce: { step: r.step(), bucket: r.bucket() ?? '', round: r.round(), offset: r.offset() }, payload: r.payloadArray() ?? emptyFloats };
    }
    case Body.InputRegion: {
      check.table(body, 'input region');
      [4, 6, 8].forEach((f) => check.struct(body, f, 4, 'input field'));
      check.struct(body, 10, 16, 'input region box');
      check.vector(body, 12, 4, 'input payload');
      const r = message.body(new InputRegion()) as InputRegion;
      return { kind: 'input', step: r.step(), image: r.image(), tile: r.tile(), region: regionOf(r.region()), payload: r.payloadArray() ?? emptyFloats };
    }
    case Body.Control: {
      check.table(body, 'control');
      check.struct(body, 4, 1, 'control kind');
      check.struct(body, 6, 4, 'control epoch');
      check.vector(body, 8, 1, 'control reason');
      const c = message.body(new Control()) as Control;
      const control = CONTROL_NAMES[c.kind()];
      if (control === undefined) throw new WireError(`control kind ${c.kind()} is unknown`);
      return { kind: 'control', control, epoch: c.epoch(), reason: c.reason() ?? '' };
    }
    case Body.LinkProbe: {
      check.table(body, 'link probe');
      [4, 6, 8].forEach((f) => check.struct(body, f, 4, 'link probe field'));
      check.vector(body, 10, 4, 'link probe payload');
      const p = message.body(new LinkProbe()) as LinkProbe;
      return { kind: 'probe', probe: { id: p.id(), chunk: p.chunk(), chunks: p.chunks() }, payload: p.payloadArray() ?? emptyFloats };
    }
    default:
      throw new WireError(`message body type ${type} is unknown`);
  }
}
