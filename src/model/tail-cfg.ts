// Interprets the .cfg sections after the front as tail layers, with Darknet's keys and defaults.
// Anything the tail cannot run exactly as Darknet would is a CfgError naming file:line.
import { CfgError, type CfgSection, SectionReader, parseConv, parseMaxpool } from './cfg.js';
import type { Activation } from './layers.js';
import { parseRegion } from './region-cfg.js';
import type { TailLayer } from './tail-layers.js';

const SUPPORTED = '[convolutional], [maxpool], [avgpool], [connected], [softmax], [region]';

function parseSection(section: CfgSection, reader: SectionReader, file: string): TailLayer {
  switch (section.type) {
    case 'convolutional':
    case 'conv':
      return parseConv(reader);
    case 'maxpool':
    case 'max':
      return parseMaxpool(reader);
    case 'avgpool':
    case 'avg':
      return { kind: 'avgpool' };
    case 'connected':
    case 'conn': {
      // Darknet defaults to logistic, which edgefuse does not run: silently using another one would
      // train a different network.
      if (!reader.has('activation')) throw new CfgError(file, section.line, '[connected] needs "activation" (leaky|linear|relu): Darknet\'s default, logistic, is not supported');
      const outputs = reader.int('output', 1, 1);
      return { kind: 'connected', outputs, activation: reader.choice<Activation>('activation', ['leaky', 'linear', 'relu'], 'linear') };
    }
    case 'softmax':
    case 'soft':
      reader.choice('groups', ['1'], '1');
      return { kind: 'softmax' };
    case 'region':
      return parseRegion(section, reader, file);
    case 'cost':
      // Darknet's [cost] adds its own squared-error delta to the one softmax already wrote, so the
      // pair trains differently from [softmax] alone; edgefuse runs only softmax's cross-entropy.
      throw new CfgError(file, section.line, '[cost] is not supported: Darknet adds its squared-error gradient to [softmax]\'s cross-entropy gradient; end the network with [softmax] alone');
    default:
      throw new CfgError(file, section.line, `[${section.type}] is not supported in the tail (supported: ${SUPPORTED})`);
  }
}

const isLoss = (layer: TailLayer | undefined): boolean => layer?.kind === 'softmax' || layer?.kind === 'region';

/**
 * The tail layers of `sections` (what parseCfg left after the front). An empty list means a
 * front-only model. A non-empty tail must end with its loss: [softmax] or [region].
 */
export function parseTail(sections: readonly CfgSection[], file: string): TailLayer[] {
  const layers: TailLayer[] = [];
  for (const section of sections) {
    const previous = layers[layers.length - 1];
    if (isLoss(previous)) {
      throw new CfgError(file, section.line, `[${section.type}] after [${previous!.kind}]: the ${previous!.kind} layer and its loss must be the last layer`);
    }
    const reader = new SectionReader(section, file);
    layers.push(parseSection(section, reader, file));
    reader.rejectUnknown();
  }
  const last = sections[sections.length - 1];
  if (last && !isLoss(layers[layers.length - 1])) {
    throw new CfgError(file, last.line, `the network ends with [${last.type}]: a tail must end with [softmax] (cross-entropy) or [region] (YOLOv2 detection)`);
  }
  return layers;
}
