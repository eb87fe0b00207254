// `edge verify`: argument handling and output; the work is in src/verify.
import { parseArgs } from 'node:util';
import { initBackend } from '../fused/backend.js';
import { type BackendName, parseBackend } from '../fused/backend-name.js';
import { loadModel } from '../model/load.js';
import { withInputSize } from '../model/presets.js';
import { parseGrid } from '../tiles/grid.js';
import { parseGrouping } from '../tiles/groups.js';
import { verify } from '../verify/verify.js';
import { UsageError, asUsage, parsePositiveInt, parseSize } from './usage-error.js';

export const VERIFY_HELP = `Usage: edge verify --model <cfg file|preset> --grid RxC [options]

Trains one step of the tile-partitioned front (every device in this process, through the real
exchange code) and compares every weight gradient and the input gradient with tf.grad of the
unpartitioned front, for the same random weights, inputs and a fixed random linear loss.

  --model M            Darknet .cfg file or preset (yolov2-front, tiny)      [required]
  --grid RxC           tile grid over the front's output map                 [required]
  --input HxW          override the network input size
  --forward-groups S   each | all | start layers such as 0,8,10,12,14         [each]
  --backward-groups S  same syntax; defaults to the forward grouping
  --batch N            images per step                                       [1]
  --devices N          devices the tiles are spread over                     [one per tile]
  --seed N             seed of weights, inputs and loss                      [1]
  --tolerance X        largest accepted relative error                       [1e-4]
  --backend B          tensorflow | wasm | cpu                               [best available]
  --json               print one JSON object instead of a table

Exit status: 0 within tolerance, 1 not, 2 bad input.`;

export async function verifyCommand(argv: string[]): Promise<number> {
  const { values } = asUsage(() =>
    parseArgs({
      args: argv,
      options: {
        model: { type: 'string' }, grid: { type: 'string' }, input: { type: 'string' },
        'forward-groups': { type: 'string' }, 'backward-groups': { type: 'string' },
        batch: { type: 'string' }, devices: { type: 'string' }, seed: { type: 'string' },
        tolerance: { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' },
      },
      strict: true,
    }),
  );
  if (values.help) {
    console.log(VERIFY_HELP);
    return 0;
  }
  if (!values.model) throw new UsageError('verify needs --model (a .cfg file or a preset)');
  if (!values.grid) throw new UsageError('verify needs --grid RxC');
  const request = asUsage(() => {
    let net = loadModel(values.model!).network;
    if (values.input) {
      const size = parseSize('--input', values.input);
      net = withInputSize(net, size.height, size.width);
    }
    const forwardText = values['forward-groups'] ?? 'each';
    const tolerance = values.tolerance === undefined ? 1e-4 : Number(values.tolerance);
    if (!(tolerance > 0)) throw new UsageError(`--tolerance must be a positive number, got "${values.tolerance}"`);
    return {
      net,
      grid: parseGrid(values.grid!),
      forwardGroups: parseGrouping(forwardText, net.layers.length),
      backwardGroups: parseGrouping(values['backward-groups'] ?? forwardText, net.layers.length),
      batch: parsePositiveInt('--batch', values.batch, 1),
      seed: values.seed === undefined ? 1 : parsePositiveInt('--seed', values.seed, 1),
      tolerance,
      ...(values.devices ? { devices: parsePositiveInt('--devices', values.devices, 1) } : {}),
    };
  });
  const backendName: BackendName | undefined = values.backend ? asUsage(() => parseBackend(values.backend!)) : undefined;
  const backend = await initBackend(backendName);
  if (!values.json) {
    for (const note of backend.notes) console.error(`note: ${note}`);
    console.error(`backend: ${backend.name}`);
  }
  const report = await asUsageIfPlanError(() => verify(request));
  if (values.json) console.log(JSON.stringify({ ...report, backend: backend.name }));
  else {
    for (const c of report.comparisons) console.log(`${c.name.padEnd(18)} ${c.relError.toExponential(2)}`);
    console.log(
      `${report.ok ? 'OK' : 'MISMATCH'}: ${report.model} ${report.input} grid ${report.grid} forward ${report.forwardGroups} ` +
        `backward ${report.backwardGroups} batch ${report.batch} on ${report.devices} devices: max relative error ` +
        `${report.maxRelError.toExponential(2)} (${report.worst}), tolerance ${report.tolerance}` +
        (report.devicesAgree ? '' : '; devices disagree on the summed weight gradients'),
    );
  }
  return report.ok ? 0 : 1;
}

/** Plan construction errors (grid too large, too many devices) are bad input too. */
async function asUsageIfPlanError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    const message = (error as Error).message;
    if (/^(grid|devices|batch) /.test(message)) throw new UsageError(message);
    throw error;
  }
}
