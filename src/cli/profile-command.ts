// `edge profile`: measure this device and write a profile for `--profile FILE` (edge plan, and
// training with --grid/--forward-groups/--backward-groups auto). The measuring code loads tfjs; this
// module does not, so the RSS taken first thing is that of a device process before compute.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { parseBackend } from '../fused/backend-name.js';
import { builtinProfile } from '../grouping/builtin-profiles.js';
import type { LinkProfile } from '../grouping/profile.js';
import type { Network } from '../model/layers.js';
import { loadModel } from '../model/load.js';
import { withInputSize } from '../model/presets.js';
import { UsageError, asUsage, parseNonNegativeInt, parseSize } from './usage-error.js';

export const PROFILE_HELP = `Usage: edge profile [options]

Measures this device with the ops training runs and prints a device profile (JSON) for
\`edge plan --profile FILE\` and for training with --grid/--forward-groups auto --profile FILE.
Progress goes to stderr. Half a minute to a minute for the YOLOv2 front at 608x608; --quick takes
a few seconds.

  --model M           Darknet .cfg file or preset whose front is measured       [yolov2-front]
  --input HxW         input size                                                    [from cfg]
  --workers N         compute workers per device, as training will run (0: main thread,
                      profiled as 1); with 2+ the parallel efficiency is measured         [1]
  --backend B         tensorflow | wasm | cpu                               [best available]
  --out FILE          write the profile to FILE instead of stdout
  --name NAME         the profile's name                              [measured-<hostname>]
  --link-mib X        link payload rate, MiB/s per direction          [11.4: 100 Mbit/s]
  --latency-ms X      cost per message on the link, ms                                [0.2]
  --cpu-ms-per-mib X  device CPU per MiB sent or received, ms (encoding, copies, summing,
                      the network stack; the emulator benchmark measures it)             [15]
  --quick             one timed run per op, tiles only, fewer overhead steps (a few seconds)
  --json              print one JSON object: the profile and every measurement behind it

The link is not measured here: it needs two devices. Training clusters measure every link at
start (--measure-links, on by default) and log the values to put into the profile's link.`;

/** The default link: 100 Mbit/s Ethernet as measured between this machine's emulated devices. */
const DEFAULT_LINK: LinkProfile = builtinProfile('this-machine').link;

function positiveNumber(flag: string, text: string, allowZero: boolean): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new UsageError(`${flag} must be a ${allowZero ? 'non-negative' : 'positive'} number, got "${text}"`);
  }
  return v;
}

export async function profileCommand(argv: string[]): Promise<number> {
  // Before anything large loads: Node plus the modules every `edge` process has (the moment the
  // training command measures its runtime for the memory estimate).
  const runtimeBytes = process.memoryUsage().rss;
  const { values } = asUsage(() =>
    parseArgs({
      args: argv,
      options: {
        model: { type: 'string' }, input: { type: 'string' }, workers: { type: 'string' }, backend: { type: 'string' },
        out: { type: 'string' }, name: { type: 'string' }, 'link-mib': { type: 'string' }, 'latency-ms': { type: 'string' }, 'cpu-ms-per-mib': { type: 'string' },
        quick: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }),
  );
  if (values.help) {
    console.log(PROFILE_HELP);
    return 0;
  }
  const setup = asUsage(() => {
    let net: Network = loadModel(values.model ?? 'yolov2-front').network;
    if (values.input) {
      const size = parseSize('--input', values.input);
      net = withInputSize(net, size.height, size.width);
    }
    if (values.name !== undefined && values.name.trim() === '') throw new UsageError('--name must not be empty');
    const given = { mib: values['link-mib'], latency: values['latency-ms'], cpu: values['cpu-ms-per-mib'] };
    const link: LinkProfile = {
      ...DEFAULT_LINK,
      ...(given.mib !== undefined ? { mibPerSecond: positiveNumber('--link-mib', given.mib, false) } : {}),
      ...(given.latency !== undefined ? { latencyMs: positiveNumber('--latency-ms', given.latency, true) } : {}),
      ...(given.cpu !== undefined ? { cpuMsPerMiB: positiveNumber('--cpu-ms-per-mib', given.cpu, true) } : {}),
    };
    const anyGiven = Object.values(given).some((v) => v !== undefined);
    const linkNote = anyGiven
      ? `link ${link.mibPerSecond} MiB/s, ${link.latencyMs} ms per message, ${link.cpuMsPerMiB} CPU ms per MiB as given (--link-mib/--latency-ms/--cpu-ms-per-mib)${Object.values(given).some((v) => v === undefined) ? ', the rest default' : ''}`
      : `link not measured: the default ${DEFAULT_LINK.mibPerSecond} MiB/s, ${DEFAULT_LINK.latencyMs} ms, ${DEFAULT_LINK.cpuMsPerMiB} CPU ms per MiB (100 Mbit/s Ethernet); clusters log their measured links at start`;
    return {
      net, link, linkNote,
      workers: values.workers === undefined ? 1 : parseNonNegativeInt('--workers', values.workers),
      backend: values.backend === undefined ? undefined : parseBackend(values.backend),
    };
  });
  if (setup.workers > 64) throw new UsageError(`--workers ${setup.workers}: at most 64`);
  const log = (line: string) => console.error(`profile: ${line}`);
  log(`${setup.net.name} ${setup.net.input.height}x${setup.net.input.width}, batch ${setup.net.hyper.batch}; rss ${(runtimeBytes / 1048576).toFixed(1)} MiB before compute`);
  const { BackendUnavailableError, measureProfile } = await import('../loop/profile-device.js');
  const m = await measureProfile({
    net: setup.net, workers: setup.workers, ...(setup.backend ? { backend: setup.backend } : {}), quick: values.quick === true,
    link: setup.link, linkNote: setup.linkNote, runtimeBytes, ...(values.name ? { name: values.name.trim() } : {}), log,
  }).catch((error: Error) => {
    throw error instanceof BackendUnavailableError ? new UsageError(`--backend ${setup.backend}: ${error.message}`) : error;
  });
  const text = JSON.stringify(m.profile, null, 2);
  if (values.out) {
    mkdirSync(dirname(values.out), { recursive: true });
    writeFileSync(values.out, `${text}\n`);
    log(`profile written to ${values.out} (${m.seconds.toFixed(1)} s); plan with it: edge plan --devices N --profile ${values.out}`);
  } else log(`done in ${m.seconds.toFixed(1)} s`);
  if (values.json) console.log(JSON.stringify(m));
  else if (!values.out) console.log(text);
  return 0;
}
