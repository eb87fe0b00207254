// `edge detect`: runs a trained detector (a model ending with [region]) on one image on this device,
// prints the boxes and optionally draws them into a PNG.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DataError } from '../data/data-error.js';
import { type RgbImage, readImage } from '../data/image.js';
import { readNames } from '../data/list-file.js';
import { resizeBilinear } from '../data/resize.js';
import { DEFAULT_DETECT_THRESH, batchDetections } from '../eval/detections.js';
import { DEFAULT_NMS } from '../eval/nms.js';
import { type Model, runNetwork } from '../eval/run-network.js';
import { initBackend } from '../fused/backend.js';
import { parseBackend } from '../fused/backend-name.js';
import { loadModel } from '../model/load.js';
import { parseTail } from '../model/tail-cfg.js';
import { type RegionLayer, lossLayer } from '../model/tail-layers.js';
import { decodeWeights } from '../model/weights.js';
import { classColour, drawBoxes, enlarge, toPixels } from './box-image.js';
import { UsageError, asUsage, parsePositiveInt } from './usage-error.js';

export const DETECT_HELP = `Usage: edge detect --model <cfg file|preset> --weights FILE [options] IMAGE

Runs a detector (a model whose tail ends with [region]) on one PNG or JPEG image, unpartitioned on
this device. The image is stretched to the network input. Prints one line per box, by falling
score: class name, score (objectness x class probability) and the box in pixels of the image.

  --model M      Darknet .cfg file or preset (yolov2-shapes)                    [required]
  --weights F    Darknet .weights of the whole model (front then tail)          [required]
  --thresh X     keep boxes scoring above X                                     [${DEFAULT_DETECT_THRESH}]
  --nms X        per-class non-maximum suppression IoU                          [${DEFAULT_NMS}]
  --names F      class names, one a line (for example data/shapes/shapes.names) [class N]
  --out F        also write the image with the boxes drawn as a PNG
  --scale N      draw on the image enlarged N times (1-16), for small inputs     [1]
  --backend B    tensorflow | wasm | cpu                                        [best available]`;

const MAX_SCALE = 16;

function parseFraction(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !(value >= 0 && value <= 1)) throw new UsageError(`${flag} must be a number from 0 to 1, got "${text}"`);
  return value;
}

/** The model and its weights; a model that is not a detector or weights of another model are usage errors. */
function loadDetector(spec: string, weightsFile: string): { model: Model; region: RegionLayer } {
  const parsed = loadModel(spec);
  const tail = parseTail(parsed.tail, parsed.file);
  const loss = lossLayer(tail);
  if (loss === null) throw new UsageError(`${parsed.file} has no tail, so no detector: detect needs a model that ends with [region]`);
  if (loss.kind !== 'region') throw new UsageError(`${parsed.file} ends with [softmax]: a softmax tail classifies whole images, it is not a detector; detect needs a model that ends with [region]`);
  if (parsed.network.input.channels !== 3) throw new UsageError(`${parsed.file} takes ${parsed.network.input.channels} input channels: detect feeds RGB images (channels=3)`);
  if (!existsSync(weightsFile)) throw new UsageError(`${weightsFile}: weights file not found`);
  const { params, tailParams } = decodeWeights(parsed.network, readFileSync(weightsFile), weightsFile, tail);
  return { model: { net: parsed.network, params, tail, tailParams: tailParams! }, region: loss };
}

function readInput(file: string): RgbImage {
  try {
    return readImage(file);
  } catch (error) {
    if (error instanceof DataError) throw new UsageError(error.message);
    throw error;
  }
}

function classNames(file: string | undefined, classes: number): string[] {
  if (file === undefined) return Array.from({ length: classes }, (_, c) => `class ${c}`);
  const names = readNames(file);
  if (names.length !== classes) throw new UsageError(`${file} names ${names.length} classes, the model's [region] has ${classes}`);
  return names;
}

export async function detectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = asUsage(() =>
    parseArgs({
      args: argv,
      options: {
        model: { type: 'string' }, weights: { type: 'string' }, thresh: { type: 'string' }, nms: { type: 'string' },
        names: { type: 'string' }, out: { type: 'string' }, scale: { type: 'string' }, backend: { type: 'string' }, help: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    }),
  );
  if (values.help) {
    console.log(DETECT_HELP);
    return 0;
  }
  if (!values.model) throw new UsageError('detect needs --model (a .cfg file or a preset)');
  if (!values.weights) throw new UsageError('detect needs --weights FILE (Darknet .weights of the whole model)');
  if (positionals.length !== 1) throw new UsageError(`detect needs exactly one image (PNG or JPEG), got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`);
  const imageFile = positionals[0]!;
  const options = { thresh: parseFraction('--thresh', values.thresh, DEFAULT_DETECT_THRESH), nms: parseFraction('--nms', values.nms, DEFAULT_NMS) };
  const scale = parsePositiveInt('--scale', values.scale, 1);
  if (scale > MAX_SCALE) throw new UsageError(`--scale must be 1 to ${MAX_SCALE}, got ${scale}`);
  const backendName = values.backend ? asUsage(() => parseBackend(values.backend!)) : undefined;
  const { model, region } = asUsage(() => loadDetector(values.model!, values.weights!));
  const names = asUsage(() => classNames(values.names, region.classes));
  const image = readInput(imageFile);

  const backend = await initBackend(backendName);
  for (const note of backend.notes) console.error(`note: ${note}`);
  console.error(`backend: ${backend.name}`);
  const { height, width } = model.net.input;
  const output = await runNetwork(model, resizeBilinear(image, height, width).data, 1);
  const boxes = batchDetections(output, 1, region, options)[0]!.map((d) => ({ ...d, ...toPixels(d, image.width, image.height) }));
  for (const b of boxes) console.log(`${names[b.classId]} ${b.score.toFixed(3)} left=${b.left} top=${b.top} right=${b.right} bottom=${b.bottom}`);
  if (values.out) {
    const drawn = scale === 1 ? image : enlarge(image, scale);
    writeFileSync(values.out, drawBoxes(drawn, boxes.map((b) => ({ classId: b.classId, ...toPixels(b, drawn.width, drawn.height) }))));
    const legend = names.map((name, c) => `${name}: ${classColour(c).name}`).join(', ');
    console.error(`${boxes.length} boxes drawn into ${values.out} (${legend})`);
  }
  return 0;
}
