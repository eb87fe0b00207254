// Link measurement when `edge --peers` starts a cluster: logged, in the --report JSON, and bounded
// when a peer was started without it (--measure-links off). No measured value is asserted beyond
// being positive and finite.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleEnv, runEdgeCluster } from '../helpers/cluster.js';

t.test('rank 0 measures its link and reports it; rank 1, started with --measure-links off, only answers', async (t) => {
  const dir = t.testdir({});
  const runs = await runEdgeCluster(2, (rank) => [
    '--model', 'tiny', '--steps', '1', '--workers', '0', '--report', join(dir, 'report{rank}.json'), ...(rank === 1 ? ['--measure-links', 'off'] : []),
  ]);
  t.same(runs.map((r) => r.code), [0, 0], runs.map((r) => r.log).join('\n'));
  t.match(runs[0]!.log, /\[rank 0\] link to rank 1 \(127\.0\.0\.1:\d+\): round trip [\d.]+ ms \(fastest [\d.]+\), sending [\d.]+ MiB\/s \(256 KiB in [\d.]+ ms\)/);
  t.match(runs[0]!.log, /links as a profile's "link" .*"mibPerSecond": [\d.]+, "latencyMs": [\d.]+/);
  t.notMatch(runs[1]!.log, /link to rank/);
  const [report0, report1] = [0, 1].map((r) => JSON.parse(readFileSync(join(dir, `report${r}.json`), 'utf8')));
  t.equal(report0.links.length, 1);
  const link = report0.links[0];
  t.match(link, { peer: 1, burstBytes: 256 * 1024, error: null });
  for (const key of ['roundTripMs', 'roundTripMinMs', 'sendMibPerSecond', 'burstMs']) t.ok(Number.isFinite(link[key]) && link[key] > 0, `${key} ${link[key]}`);
  t.equal(report1.links, null, 'not measured on rank 1');
});

t.test('--measure-links takes on or off', async (t) => {
  const run = spawnSync(process.execPath, ['dist/edge.js', '--peers', '127.0.0.1:1', '--measure-links', 'sometimes'], { encoding: 'utf8', env: bundleEnv() });
  t.equal(run.status, 2);
  t.match(run.stderr, /--measure-links must be on or off, got "sometimes"/);
});
