// verify must be able to fail: corrupt what crosses the exchange and the mismatch must be reported.
import t from 'tap';
import { initBackend } from '../../src/fused/backend.js';
import { presetCfg } from '../../src/model/presets.js';
import type { Exchange, StripPhase } from '../../src/peers/exchange.js';
import { createInMemoryCluster } from '../../src/peers/in-memory.js';
import { parseGrouping } from '../../src/tiles/groups.js';
import { relativeError, verify } from '../../src/verify/verify.js';

await initBackend('wasm');
const net = presetCfg('tiny').network;
const groups = parseGrouping('0,2', net.layers.length);
const base = { net, grid: { rows: 2, cols: 2 }, forwardGroups: groups, backwardGroups: groups, batch: 1, seed: 5, tolerance: 1e-4 };

/** Zero the first strip of one phase that device 0 receives. */
const dropFirst = (phase: StripPhase) => (exchange: Exchange): Exchange => {
  let dropped = exchange.rank !== 0;
  return {
    ...exchange,
    sendStrip: exchange.sendStrip.bind(exchange),
    allReduceSum: exchange.allReduceSum.bind(exchange),
    expectStrip(address, region, floats, scatter) {
      if (dropped || address.phase !== phase) return exchange.expectStrip(address, region, floats, scatter);
      dropped = true;
      return exchange.expectStrip(address, region, floats, (payload, band) => scatter(new Float32Array(payload.length), band));
    },
  };
};

t.test('the uncorrupted run passes', async (t) => {
  const report = await verify(base);
  t.ok(report.ok, `max relative error ${report.maxRelError}`);
});

for (const phase of ['halo', 'grad'] as const) {
  t.test(`a zeroed ${phase} strip is caught`, async (t) => {
    const report = await verify({ ...base, wrapExchange: dropFirst(phase) });
    t.notOk(report.ok, `max relative error ${report.maxRelError} (${report.worst})`);
    t.ok(report.maxRelError > 1e-3);
  });
}

t.test('a perturbed weight-gradient reduction on one device is caught', async (t) => {
  const report = await verify({
    ...base,
    wrapExchange: (exchange) => ({
      ...exchange,
      sendStrip: exchange.sendStrip.bind(exchange),
      expectStrip: exchange.expectStrip.bind(exchange),
      async allReduceSum(key, values) {
        await exchange.allReduceSum(key, values);
        if (exchange.rank === 1) values[0] = values[0]! + 1e-3;
      },
    }),
  });
  t.notOk(report.devicesAgree);
  t.notOk(report.ok);
});

t.test('relative error', async (t) => {
  t.equal(relativeError(new Float32Array([1, 2]), new Float32Array([1, 2])), 0);
  t.equal(relativeError(new Float32Array([1, 3]), new Float32Array([1, 2])), 0.5);
  t.ok(Number.isNaN(relativeError(new Float32Array([NaN]), new Float32Array([1]))), 'NaN is never within tolerance');
  t.equal(relativeError(new Float32Array([1]), new Float32Array([1, 2])), Infinity);
  t.equal(relativeError(new Float32Array([0.5]), new Float32Array([0])), 0.5);
});

t.test('an in-memory reduction with mismatched lengths fails on every device', async (t) => {
  const [a, b] = createInMemoryCluster(2, [0, 1]);
  const results = await Promise.allSettled([a!.allReduceSum('k', new Float32Array(3)), b!.allReduceSum('k', new Float32Array(4))]);
  t.same(results.map((r) => r.status), ['rejected', 'rejected']);
  t.match(String((results[0] as PromiseRejectedResult).reason), /different lengths 3, 4/);
});
