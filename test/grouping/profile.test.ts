// Device profiles: the built-in ones are valid, and malformed ones are refused naming the field.
import t from 'tap';
import { builtinProfile, builtinProfileNames } from '../../src/grouping/builtin-profiles.js';
import { ProfileError, convRule, parseProfile, parseProfileText, withWorkers } from '../../src/grouping/profile.js';
import { convLayer } from '../../src/model/layers.js';

const valid = () => JSON.parse(JSON.stringify(builtinProfile('pi3'))) as Record<string, any>;

t.test('built-in profiles validate and survive a JSON round trip', async (t) => {
  t.same(builtinProfileNames().sort(), ['pi3', 'this-machine']);
  for (const name of builtinProfileNames()) {
    const profile = builtinProfile(name);
    t.equal(profile.name, name);
    t.same(parseProfileText(JSON.stringify(profile), 'round trip'), profile);
  }
  t.throws(() => builtinProfile('pi5'), /unknown profile "pi5"; built-in profiles: this-machine, pi3/);
});

t.test('malformed profiles are refused naming the field and the value', async (t) => {
  const cases: [string, (p: Record<string, any>) => void, RegExp][] = [
    ['missing number', (p) => delete p.compute.workers, /^f\.json: compute\.workers is missing$/],
    ['string for a number', (p) => (p.link.mibPerSecond = 'fast'), /link\.mibPerSecond must be a positive number, got "fast"/],
    ['zero rate', (p) => (p.compute.conv[1].forwardGflops = 0), /compute\.conv\[1\]\.forwardGflops must be a positive number, got 0/],
    ['fractional workers', (p) => (p.compute.workers = 1.5), /compute\.workers must be a positive integer, got 1\.5/],
    ['efficiency above 1', (p) => (p.compute.parallelEfficiency = 1.2), /compute\.parallelEfficiency must be a number in \(0, 1\], got 1\.2/],
    ['negative latency', (p) => (p.link.latencyMs = -1), /link\.latencyMs must be a non-negative number, got -1/],
    ['typo', (p) => (p.compute.wrokers = 4), /compute\.wrokers is not a profile field/],
    ['unknown rule field', (p) => (p.compute.conv[0].channels = 3), /compute\.conv\[0\]\.channels is not a profile field/],
    ['no catch-all rule', (p) => (p.compute.conv = [p.compute.conv[0]]), /compute\.conv\[0\] must have no maxInChannels or kernel/],
    ['empty rules', (p) => (p.compute.conv = []), /compute\.conv must be a non-empty array, got \[\]/],
    ['section not an object', (p) => (p.memory = 5), /memory must be an object, got 5/],
    ['missing section', (p) => delete p.link, /link is missing/],
    ['empty name', (p) => (p.name = ''), /name must be a non-empty string/],
  ];
  for (const [what, damage, message] of cases) {
    const p = valid();
    damage(p);
    t.throws(() => parseProfile(p, 'f.json'), message, what);
    t.throws(() => parseProfile(p, 'f.json'), ProfileError, what);
  }
  t.throws(() => parseProfileText('{"name": ', 'f.json'), /^f\.json: not valid JSON/);
  t.throws(() => parseProfileText('[1]', 'f.json'), /f\.json: the profile must be an object, got \[1\]/);
});

t.test('a conv layer takes the first rule it matches', async (t) => {
  const here = builtinProfile('this-machine');
  t.equal(convRule(here, convLayer(32, 3), 3).forwardGflops, 3.9, 'the 3-channel first layer');
  t.equal(convRule(here, convLayer(64, 3), 32).forwardGflops, 21.0);
  t.equal(convRule(here, convLayer(64, 1), 128).forwardGflops, 22.5, 'kernel 1, 128 channels');
  t.equal(convRule(here, convLayer(512, 3), 256).forwardGflops, 28.6, 'kernel 3 above 128 channels');
  t.equal(convRule(here, convLayer(8, 5), 1024).forwardGflops, 27.0, 'the catch-all');
  t.equal(withWorkers(here, 3).compute.workers, 3);
  t.throws(() => withWorkers(here, 0), /workers must be a positive integer, got 0/);
});
