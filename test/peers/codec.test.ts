import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '../../src/model/weights.js';
import { MessageWriter, WireError, decode } from '../../src/peers/codec.js';
import { rowBands } from '../../src/peers/row-bands.js';

t.test('messages round-trip, payloads are views on the message', async (t) => {
  const w = new MessageWriter();
  const region = { rows: { start: 3, end: 5 }, cols: { start: -1, end: 7 } };
  const bytes = w.strip({ step: 9, image: 2, phase: 'grad', group: 4, from: 1, to: 3, region }, 6, (x) => x.set([1, 2, 3, 4, 5, 6])).slice();
  const m = decode(bytes);
  t.equal(m.kind, 'strip');
  if (m.kind !== 'strip') return;
  t.same(m.strip, { step: 9, image: 2, phase: 'grad', group: 4, from: 1, to: 3, region });
  t.same([...m.payload], [1, 2, 3, 4, 5, 6]);
  t.equal(m.payload.buffer, bytes.buffer, 'no copy on decode');
  for (const phase of ['halo', 'recompute', 'output', 'outgrad'] as const) {
    const s = decode(w.strip({ step: 1, image: 0, phase, group: 0, from: 4, to: 2, region }, 1, (x) => x.fill(0)).slice());
    t.equal(s.kind === 'strip' && s.strip.phase, phase, `phase ${phase} round-trips`);
  }
  const r = decode(w.reduce({ step: 1, bucket: '1/dW/3', round: 2, offset: 40 }, 2, (x) => x.set([7, 8])).slice());
  t.same(r.kind === 'reduce' && [r.reduce, [...r.payload]], [{ step: 1, bucket: '1/dW/3', round: 2, offset: 40 }, [7, 8]]);
  const c = decode(w.control('abort', 5, 'disk full').slice());
  t.same(c, { kind: 'control', control: 'abort', epoch: 5, reason: 'disk full' });
  for (const control of ['ping', 'pong', 'probe-ack'] as const) t.same(decode(w.control(control, 77).slice()), { kind: 'control', control, epoch: 77, reason: '' });
  const p = decode(w.probe({ id: 12, chunk: 2, chunks: 3 }, 5).slice());
  t.same(p.kind === 'probe' && [p.probe, [...p.payload]], [{ id: 12, chunk: 2, chunks: 3 }, [0, 0, 0, 0, 0]], 'a link probe carries zeros');
  const h = decode(w.hello({ clusterId: 'c', rank: 3, version: 'v', planHash: 'p', challenge: new Uint8Array([1, 2]), proof: new Uint8Array([3]) }).slice());
  t.same(h.kind === 'hello' && [h.hello.rank, [...h.hello.challenge], [...h.hello.proof]], [3, [1, 2], [3]]);
});

t.test('every prefix and every single-byte corruption decodes or throws WireError, never anything else', async (t) => {
  const w = new MessageWriter();
  const bytes = w.strip({ step: 1, image: 0, phase: 'halo', group: 1, from: 0, to: 1, region: { rows: { start: 0, end: 1 }, cols: { start: 0, end: 2 } } }, 2, (x) => x.fill(3)).slice();
  let thrown = 0;
  for (let cut = 0; cut < bytes.length; cut++) {
    try {
      decode(bytes.slice(0, cut));
    } catch (e) {
      t.type(e, WireError);
      thrown++;
    }
  }
  t.equal(thrown, bytes.length, 'every strict prefix is refused');
  const random = seededRandom(5);
  for (let i = 0; i < 5000; i++) {
    const mutated = bytes.slice();
    mutated[Math.floor(random() * mutated.length)] = Math.floor(random() * 256);
    try {
      const m = decode(mutated);
      if (m.kind === 'strip') t.ok(m.payload.byteOffset + m.payload.byteLength <= mutated.byteLength);
    } catch (e) {
      if (!(e instanceof WireError)) t.fail(`unexpected ${(e as Error).name}: ${(e as Error).message}`);
    }
  }
});

t.test('row bands cover a region and respect the limit', async (t) => {
  const region = { rows: { start: 2, end: 9 }, cols: { start: 0, end: 5 } };
  const bands = rowBands(region, 7 * 5 * 3, 31);
  t.same(bands.map((b) => [b.rows.start, b.rows.end]), [[2, 4], [4, 6], [6, 8], [8, 9]]);
  t.throws(() => rowBands(region, 7 * 5 * 3, 10), /one row of a strip holds 15 floats/);
});

t.test('the committed generated code matches schema/tiles.fbs', async (t) => {
  const flatc = spawnSync('flatc', ['--version'], { encoding: 'utf8' });
  if (flatc.status !== 0) {
    if (process.env.CI) t.fail('flatc is missing in CI: .ci/run must apt-get install flatbuffers-compiler');
    else t.comment('flatc not installed (apt-get install flatbuffers-compiler): skipped here, CI runs this check');
    return;
  }
  const out = mkdtempSync(join(tmpdir(), 'edgefuse-flatc-'));
  execFileSync('flatc', ['--ts', '--ts-flat-files', '-o', out, 'schema/tiles.fbs']);
  t.equal(readFileSync(join(out, 'tiles_generated.ts'), 'utf8'), readFileSync('src/peers/wire/tiles_generated.ts', 'utf8'), 'run `npm run schema` after changing the schema');
});
