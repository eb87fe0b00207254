// Link measurement at cluster start over real uWebSockets.js/ws links on loopback: every device gets
// a round trip and a send rate for each peer; a peer that takes no part, or one that is gone, costs
// a bounded wait and leaves its values null with the reason, never a hang or a throw. Values are
// only checked to be positive and finite: this machine's speed is not under test.
import t, { type Test } from 'tap';
import { type LinkMeasurement, describeLinks, sendRate } from '../../src/peers/link-probe.js';
import { PeerNode } from '../../src/peers/peer-node.js';
import { freePorts } from '../helpers/cluster.js';

const validator = { strip: () => null, reduce: () => null };

async function startNodes(count: number): Promise<PeerNode[]> {
  const peers = (await freePorts(count)).map((port) => ({ host: '127.0.0.1', port }));
  return Promise.all(Array.from({ length: count }, (_, rank) => PeerNode.start({
    rank, peers, secret: 'probe-secret', planHash: 'probe-plan', validator, tileDevice: Array.from({ length: count }, (_, i) => i),
    peerTimeoutMs: 60_000, maxChunkFloats: 4096,
  })));
}

const measured = (t: Test, l: LinkMeasurement, what: string) => {
  t.equal(l.error, null, `${what}: no error`);
  for (const key of ['roundTripMs', 'roundTripMinMs', 'sendMibPerSecond', 'burstMs'] as const) {
    const v = l[key];
    t.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${what}: ${key} ${v} is positive and finite`);
  }
  t.ok(l.roundTripMinMs! <= l.roundTripMs!, `${what}: fastest round trip <= median`);
};

t.test('three devices measure every link to each other', async (t) => {
  const nodes = await startNodes(3);
  try {
    // 40 KiB: several 16 KiB chunks per burst.
    const results = await Promise.all(nodes.map((n) => n.measureLinks({ pings: 4, burstBytes: 40 * 1024, timeoutMs: 20_000 })));
    results.forEach((links, rank) => {
      t.same(links.map((l) => l.peer), [0, 1, 2].filter((p) => p !== rank), `rank ${rank}: one entry per peer`);
      for (const l of links) {
        measured(t, l, `rank ${rank} -> ${l.peer}`);
        t.equal(l.burstBytes, 40 * 1024);
        t.match(l.address, /^127\.0\.0\.1:\d+$/);
      }
      const lines = describeLinks(links);
      t.equal(lines.length, 3, 'a line per link and the profile values');
      t.match(lines[2], /"mibPerSecond": [\d.]+, "latencyMs": [\d.]+/);
    });
    // The links still carry training traffic afterwards.
    await Promise.all(nodes.map((n) => n.barrier(1)));
  } finally {
    nodes.forEach((n) => n.close());
  }
});

t.test('a peer that does not take part still answers; the wait for it is bounded', async (t) => {
  const nodes = await startNodes(2);
  try {
    const started = performance.now();
    const links = await nodes[0]!.measureLinks({ pings: 2, burstBytes: 16 * 1024, timeoutMs: 4000 });
    t.ok(performance.now() - started < 20_000, 'returns: the waits for the silent peer are bounded');
    t.equal(links.length, 1);
    measured(t, links[0]!, 'rank 0 -> 1 (rank 1 not measuring)');
  } finally {
    nodes.forEach((n) => n.close());
  }
});

t.test('a peer that is gone gives an error entry, not a throw', async (t) => {
  const nodes = await startNodes(2);
  nodes[1]!.close();
  await new Promise((resolve) => setTimeout(resolve, 200));
  try {
    const links = await nodes[0]!.measureLinks({ pings: 2, burstBytes: 16 * 1024, timeoutMs: 1500 });
    t.equal(links.length, 1);
    t.equal(links[0]!.roundTripMs, null);
    t.equal(links[0]!.sendMibPerSecond, null);
    t.match(links[0]!.error, /round trip: /);
    t.match(describeLinks(links)[0], /round trip \? ms/);
  } finally {
    nodes[0]!.close();
  }
});

t.test('a malformed link probe closes its link and is counted', async (t) => {
  const nodes = await startNodes(2);
  try {
    const before = nodes[0]!.counters.rejectedTotal;
    // Rank 1 sends a burst chunk numbered past its own count through its ordinary link.
    const failure = new Promise<Error>((resolve) => nodes[1]!.onFailure(resolve));
    (nodes[1] as unknown as { sendMessage(peer: number, encode: (w: import('../../src/peers/codec.js').MessageWriter) => Uint8Array): void })
      .sendMessage(0, (w) => w.probe({ id: 1, chunk: 5, chunks: 2 }, 4));
    const error = await failure;
    t.match(error.message, /peer 0 .* closed its link/);
    t.equal(nodes[0]!.counters.rejectedTotal - before, 1);
    t.match(JSON.stringify(Object.fromEntries(nodes[0]!.counters.rejected)), /out-of-plan/);
  } finally {
    nodes.forEach((n) => n.close());
  }
});

t.test('the send rate: the difference of two burst sizes, or the full burst less a round trip', async (t) => {
  const mib = 1024 * 1024;
  // A token bucket lets 64 KiB through at once: both bursts save the same, the difference is the rate.
  t.equal(sendRate(4 * mib, mib, { short: 2 + 0, full: 2 + 300 }, 2), 3 / 0.3);
  // Too close to tell apart (a fast link): the full burst less the round trip.
  t.equal(sendRate(4 * mib, mib, { short: 1, full: 1.2 }, 0.2), 4 / 0.001);
  t.equal(sendRate(4 * mib, mib, { short: 1, full: 1.2 }, 1), 4 / 0.0012, 'a round trip over half the burst is not taken off');
});
