// Built-in networks, written as Darknet cfg text so they go through the same parser as user files.
import { parseCfg, type ParsedCfg } from './cfg.js';
import type { Network } from './layers.js';

function conv(filters: number, size: number, bn = 1): string {
  return `[convolutional]\nbatch_normalize=${bn}\nfilters=${filters}\nsize=${size}\nstride=1\npad=1\nactivation=leaky\n`;
}
const MAX = '[maxpool]\nsize=2\nstride=2\n';

/** The first 16 layers of Darknet's yolov2.cfg (608x608x3 to 38x38x256). */
const YOLOV2_FRONT = [
  '[net]\nbatch=1\nwidth=608\nheight=608\nchannels=3\nlearning_rate=0.001\nmomentum=0.9\ndecay=0.0005\n',
  conv(32, 3), MAX, conv(64, 3), MAX, conv(128, 3), conv(64, 1), conv(128, 3), MAX,
  conv(256, 3), conv(128, 1), conv(256, 3), MAX, conv(512, 3), conv(256, 1), conv(512, 3), conv(256, 1),
].join('\n');

/** A few-layer net for fast tests: every layer kind the front supports. */
const TINY = [
  '[net]\nbatch=2\nwidth=24\nheight=24\nchannels=3\nlearning_rate=0.01\nmomentum=0.9\ndecay=0.0005\n',
  conv(8, 3), MAX, conv(16, 3, 0), '[maxpool]\nsize=3\nstride=1\n', conv(8, 1),
].join('\n');

/** A small classifier for tests and demos: a conv/maxpool front and a tail ending in softmax. */
const TINY_CLASSIFIER = [
  '[net]\nbatch=2\nwidth=16\nheight=16\nchannels=3\nlearning_rate=0.01\nmomentum=0.9\ndecay=0.0005\n',
  conv(8, 3), MAX, conv(16, 3), '[avgpool]\n', '[connected]\noutput=10\nactivation=linear\n', '[softmax]\ngroups=1\n',
].join('\n');

/**
 * The YOLOv2 front at 96x96 (a 6x6x256 map) with a small detection head for data/shapes: a 3x3 conv,
 * a 1x1 conv to 5 anchors x (4 coords + objectness + 3 classes), and [region] with YOLOv2-VOC's
 * loss settings. Anchors: k-means over the shapes of data/shapes' training boxes with distance
 * 1 - IoU (tools/region-anchors.ts, seed 4: mean IoU 0.887 of a box with its nearest anchor), in
 * cells of the 6x6 grid. The schedule was chosen by a short single-process run (README, Tail).
 */
const YOLOV2_SHAPES = [
  '[net]\nbatch=8\nwidth=96\nheight=96\nchannels=3\nlearning_rate=0.001\nmomentum=0.9\ndecay=0.0005\nadam=1\nburn_in=20\npolicy=steps\nsteps=4000,6000\nscales=.1,.1\nmax_batches=8000\n',
  YOLOV2_FRONT.slice(YOLOV2_FRONT.indexOf('[convolutional]')),
  conv(128, 3),
  '[convolutional]\nsize=1\nstride=1\npad=1\nfilters=40\nactivation=linear\n',
  '[region]\nanchors=0.94,0.94, 1.23,1.24, 1.56,1.57, 1.92,1.93, 2.41,2.41\nbias_match=1\nclasses=3\ncoords=4\nnum=5\nsoftmax=1\njitter=.2\nrescore=1\n' +
    'object_scale=5\nnoobject_scale=1\nclass_scale=1\ncoord_scale=1\nabsolute=1\nthresh=.6\nrandom=0\nlogistic_gradient=0\n',
].join('\n');

export const PRESETS: Readonly<Record<string, string>> = {
  'yolov2-front': YOLOV2_FRONT, tiny: TINY, 'tiny-classifier': TINY_CLASSIFIER, 'yolov2-shapes': YOLOV2_SHAPES,
};

export function presetCfg(name: string): ParsedCfg {
  const text = PRESETS[name];
  if (text === undefined) {
    throw new Error(`unknown preset "${name}"; presets: ${Object.keys(PRESETS).join(', ')}`);
  }
  return parseCfg(text, `preset:${name}`, name);
}

/** The same network at another input size (the front is fully convolutional). */
export function withInputSize(net: Network, height: number, width: number): Network {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new Error(`input size must be positive integers, got ${height}x${width}`);
  }
  return { ...net, input: { ...net.input, height, width } };
}
