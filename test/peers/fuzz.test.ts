// 10,000 malformed frames at a running device: random bytes, truncations, huge lengths, wrong types,
// out-of-plan strips and reductions, before and after authentication. The device must not crash,
// and every frame must be rejected, counted, and its link closed.
import t from 'tap';
import WebSocket from 'ws';
import { planHash, planValidator } from '../../src/loop/plan-messages.js';
import { presetCfg } from '../../src/model/presets.js';
import { seededRandom } from '../../src/model/weights.js';
import { authProof, newChallenge } from '../../src/peers/auth.js';
import { MessageWriter, decode } from '../../src/peers/codec.js';
import { PROTOCOL_VERSION, PeerNode } from '../../src/peers/peer-node.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { buildTilePlan } from '../../src/tiles/plan.js';
import { freePorts } from '../helpers/cluster.js';
import { between, pick } from '../helpers/random-net.js';

const net = presetCfg('tiny').network;
const groups = parseGrouping('0,2', net.layers.length);
const plan = buildTilePlan({ net, grid: { rows: 2, cols: 2 }, devices: 2, batch: 1, forwardGroups: groups, backwardGroups: groups });
const secret = 'fuzz-secret';
const hash = planHash(plan);
const ports = await freePorts(2);
const peers = ports.map((port) => ({ host: '127.0.0.1', port }));
const common = { peers, secret, planHash: hash, validator: planValidator(plan), tileDevice: plan.tileDevice, peerTimeoutMs: 600_000, maxChunkFloats: 4096 };
const [target, other] = await Promise.all([PeerNode.start({ ...common, rank: 0 }), PeerNode.start({ ...common, rank: 1 })]);
const random = seededRandom(99);
const writer = new MessageWriter();

/** Connect to the target; optionally complete the handshake as rank 1. Resolves with the open socket. */
function connect(authenticate: boolean): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${ports[0]}/fuzz`, { perMessageDeflate: false });
    ws.binaryType = 'arraybuffer';
    ws.on('error', reject);
    ws.once('message', (data) => {
      if (!authenticate) return resolve(ws);
      const greeting = decode(new Uint8Array(data as ArrayBuffer));
      if (greeting.kind !== 'hello') return reject(new Error('no greeting'));
      const proof = authProof(secret, greeting.hello.challenge, 1, 0, hash);
      ws.send(writer.hello({ clusterId: 'edgefuse', rank: 1, version: PROTOCOL_VERSION, planHash: hash, challenge: newChallenge(), proof }).slice());
      ws.once('message', () => resolve(ws));
    });
  });
}

function sendAndWaitClose(ws: WebSocket, frame: Uint8Array | string): Promise<number> {
  return new Promise((resolve) => {
    ws.once('close', (code) => resolve(code));
    ws.send(frame);
  });
}

const validStrip = () => {
  const s = { step: 0, image: 0, phase: 'halo' as const, group: 1, from: 1, to: 0, region: { rows: { start: 0, end: 1 }, cols: { start: 0, end: 4 } } };
  return writer.strip(s, 4 * 8, (x) => x.fill(1)).slice();
};

/** Frames that can never be valid, by family. */
const families: Record<string, { authenticated: boolean; make: () => Uint8Array | string }> = {
  'random bytes': { authenticated: false, make: () => Uint8Array.from({ length: between(random, 0, 300) }, () => Math.floor(random() * 256)) },
  'truncated before auth': { authenticated: false, make: () => validStrip().subarray(0, between(random, 0, 60)).slice() },
  'data before auth': { authenticated: false, make: () => validStrip() },
  'text frame': { authenticated: false, make: () => 'hello?' },
  'truncated after auth': {
    authenticated: true,
    make: () => { const m = validStrip(); return m.subarray(0, between(random, 0, m.length - 4)).slice(); },
  },
  'huge vector length': {
    authenticated: true,
    make: () => {
      const m = validStrip();
      // The payload vector's length prefix sits right after the table data; overwrite every aligned int
      // that holds the float count with a huge value.
      const view = new DataView(m.buffer);
      for (let at = 0; at + 4 <= m.length; at += 4) if (view.getInt32(at, true) === 32) view.setInt32(at, 0x7fffffff, true);
      return m;
    },
  },
  'unknown body type': { authenticated: true, make: () => { const m = writer.control('heartbeat', 0).slice(); const view = new DataView(m.buffer); const root = view.getInt32(0, true); const vt = root - view.getInt32(root, true); view.setUint8(root + view.getUint16(vt + 4, true), 9); return m; } },
  'hello after auth': { authenticated: true, make: () => writer.hello({ clusterId: 'edgefuse', rank: 1, version: PROTOCOL_VERSION, planHash: hash, challenge: new Uint8Array(32), proof: new Uint8Array(32) }).slice() },
  'strip outside the plan': {
    authenticated: true,
    make: () => {
      const bad = pick(random, ['tile', 'region', 'floats', 'group', 'phase', 'owner'] as const);
      const s = { step: 0, image: 0, phase: 'halo' as 'halo' | 'grad', group: 1, from: 1, to: 0, region: { rows: { start: 0, end: 1 }, cols: { start: 0, end: 4 } } };
      let floats = 32;
      if (bad === 'tile') s.from = between(random, 4, 1 << 20);
      if (bad === 'region') s.region = { rows: { start: -between(random, 1, 1e6), end: 3 }, cols: { start: 0, end: between(random, 13, 1e6) } };
      if (bad === 'floats') floats = pick(random, [0, 31, 33, 4095]);
      if (bad === 'group') s.group = pick(random, [0, 7, -1, 1 << 30]);
      if (bad === 'phase') { s.phase = 'grad'; s.group = 1; s.from = 2; }
      if (bad === 'owner') { s.from = 0; s.to = 1; }
      return writer.strip(s, floats, (x) => x.fill(2)).slice();
    },
  },
  'link probe out of range': {
    authenticated: true,
    make: () => pick(random, [
      () => writer.probe({ id: 1, chunk: 3, chunks: 3 }, 4),
      () => writer.probe({ id: 1, chunk: 0, chunks: 0 }, 4),
      () => writer.probe({ id: 1, chunk: 0, chunks: between(random, 257, 1 << 30) }, 4),
    ])().slice(),
  },
  'reduce outside the plan': {
    authenticated: true,
    make: () => pick(random, [
      () => writer.reduce({ step: 0, bucket: 'nonsense', round: 0, offset: 0 }, 4, (x) => x.fill(0)),
      () => writer.reduce({ step: 0, bucket: '0/dW/1', round: 0, offset: 0 }, 4, (x) => x.fill(0)),
      () => writer.reduce({ step: 0, bucket: '0/dW/0', round: 0, offset: 1 << 30, }, 4, (x) => x.fill(0)),
      () => writer.reduce({ step: 0, bucket: '0/dW/0', round: 5, offset: 0 }, 4, (x) => x.fill(0)),
    ])().slice(),
  },
};

t.test('10,000 malformed frames', async (t) => {
  const names = Object.keys(families);
  const total = 10_000;
  const sent = new Map<string, number>();
  const before = target.counters.rejectedTotal;
  let next = 0;
  let authenticatedTurn: Promise<unknown> = Promise.resolve();
  const worker = async () => {
    while (next < total) {
      next++;
      const name = names[Math.floor(random() * names.length)]!;
      const family = families[name]!;
      const attempt = async () => sendAndWaitClose(await connect(family.authenticated), family.make());
      // A new authenticated link as rank 1 replaces the previous one, so those go one at a time.
      if (family.authenticated) await (authenticatedTurn = authenticatedTurn.then(attempt, attempt));
      else await attempt();
      sent.set(name, (sent.get(name) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const counted = target.counters.rejectedTotal - before;
  t.equal(counted, total, `every frame rejected and counted: ${JSON.stringify(Object.fromEntries(target.counters.rejected))}`);
  t.ok([...sent.values()].every((n) => n > 500), `every family exercised: ${JSON.stringify(Object.fromEntries(sent))}`);
});

t.test('an oversized frame closes its link without reaching the decoder, and the device survives', async (t) => {
  const ws = await connect(false);
  const code = await sendAndWaitClose(ws, new Uint8Array(4096 * 4 + 8192));
  t.not(code, 1000);
  const again = await connect(false);
  t.equal(again.readyState, WebSocket.OPEN, 'still accepting connections');
  again.close();
});

t.teardown(() => {
  target.close();
  other.close();
});
