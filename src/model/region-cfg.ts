// Darknet's [region] section (YOLOv2), with parse_region's keys and defaults. Keys that change what
// Darknet computes in ways edgefuse does not reproduce (log, sqrt, background, classfix, tree, map,
// coords other than 4, softmax=0) are CfgErrors naming file:line.
import { CfgError, type CfgSection, type SectionReader } from './cfg.js';
import type { Anchor, RegionLayer } from './tail-layers.js';

// Darknet's make_region_layer sets every anchor value to .5 when the cfg gives none.
const DEFAULT_ANCHOR = 0.5;

function parseAnchors(section: CfgSection, reader: SectionReader, file: string, num: number): Anchor[] {
  const values = reader.list('anchors');
  if (values.length === 0) return Array.from({ length: num }, () => ({ w: DEFAULT_ANCHOR, h: DEFAULT_ANCHOR }));
  const line = section.options.get('anchors')!.line;
  if (values.length !== 2 * num) throw new CfgError(file, line, `"anchors" has ${values.length} numbers: num=${num} needs ${2 * num} (a width and a height per anchor)`);
  const bad = values.find((v) => !(v > 0));
  if (bad !== undefined) throw new CfgError(file, line, `"anchors" must be positive sizes in grid cells, got ${bad}`);
  return Array.from({ length: num }, (_, n) => ({ w: values[2 * n]!, h: values[2 * n + 1]! }));
}

export function parseRegion(section: CfgSection, reader: SectionReader, file: string): RegionLayer {
  reader.choice('coords', ['4'], '4');
  // Darknet defaults to softmax=0 (raw class scores with a squared-error delta); only the softmax
  // variant, which every YOLOv2 cfg uses, is implemented.
  if (!reader.has('softmax')) throw new CfgError(file, section.line, '[region] needs "softmax=1" (Darknet\'s default, 0, is not supported)');
  reader.choice('softmax', ['1'], '1');
  const classes = reader.int('classes', 20, 1);
  const num = reader.int('num', 1, 1);
  const anchors = parseAnchors(section, reader, file, num);
  // Read for their syntax only: jitter and random are data augmentation and multi-scale training,
  // which belong to the data loader; absolute is unused by Darknet's region layer itself.
  reader.float('jitter', 0.2);
  reader.int('random', 0, 0);
  reader.int('absolute', 0, 0);
  return {
    kind: 'region',
    classes,
    anchors,
    thresh: reader.float('thresh', 0.5),
    biasMatch: reader.int('bias_match', 0, 0) !== 0,
    rescore: reader.int('rescore', 0, 0) !== 0,
    objectScale: reader.float('object_scale', 1),
    noobjectScale: reader.float('noobject_scale', 1),
    classScale: reader.float('class_scale', 1),
    coordScale: reader.float('coord_scale', 1),
    // edgefuse's own key (Darknet warns "Unused field" and goes on): 1 applies the logistic's
    // gradient to the x, y and objectness deltas as backward_region_layer_gpu does; 0 applies the
    // deltas to the raw inputs, as YOLOv3's yolo layer does (a cross-entropy gradient).
    logisticGradient: reader.int('logistic_gradient', 1, 0) !== 0,
  };
}
