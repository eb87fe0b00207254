// Darknet .cfg parsing: [net], [convolutional] and [maxpool] with Darknet's defaults.
// Sections after the leading conv/maxpool run are kept raw as the tail; src/model/tail-cfg.ts interprets
// them for training (verify checks only the front, so it accepts any tail).
import { type Activation, type FrontLayer, type Network, convLayer, maxpoolLayer, mapShapes } from './layers.js';

export class CfgError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
    this.name = 'CfgError';
  }
}

export interface CfgSection {
  readonly type: string;
  readonly line: number;
  readonly options: ReadonlyMap<string, { value: string; line: number }>;
}

export interface ParsedCfg {
  /** The name errors cite (a path or `preset:NAME`). */
  readonly file: string;
  readonly network: Network;
  /** Sections after the front, in file order, not interpreted yet. */
  readonly tail: readonly CfgSection[];
}

export function splitSections(text: string, file: string): CfgSection[] {
  const sections: { type: string; line: number; options: Map<string, { value: string; line: number }> }[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.replace(/[#;].*$/, '').trim();
    if (line === '') return;
    const header = /^\[([A-Za-z_]+)\]$/.exec(line);
    if (header) {
      sections.push({ type: header[1]!.toLowerCase(), line: lineNo, options: new Map() });
      return;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new CfgError(file, lineNo, `expected "key=value" or "[section]", got "${line}"`);
    const current = sections[sections.length - 1];
    if (!current) throw new CfgError(file, lineNo, `"${line}" appears before any [section]`);
    const key = line.slice(0, eq).trim().toLowerCase();
    if (current.options.has(key)) throw new CfgError(file, lineNo, `key "${key}" repeated in [${current.type}]`);
    current.options.set(key, { value: line.slice(eq + 1).trim(), line: lineNo });
  });
  return sections;
}

export class SectionReader {
  private readonly used = new Set<string>();
  constructor(
    private readonly section: CfgSection,
    private readonly file: string,
  ) {}

  int(key: string, fallback: number | undefined, min = Number.MIN_SAFE_INTEGER): number {
    const entry = this.section.options.get(key);
    this.used.add(key);
    if (!entry) {
      if (fallback === undefined) throw new CfgError(this.file, this.section.line, `[${this.section.type}] needs "${key}"`);
      return fallback;
    }
    if (!/^[+-]?\d+$/.test(entry.value)) {
      throw new CfgError(this.file, entry.line, `"${key}" must be an integer, got "${entry.value}"`);
    }
    const value = Number(entry.value);
    if (value < min) throw new CfgError(this.file, entry.line, `"${key}" must be at least ${min}, got ${value}`);
    return value;
  }

  float(key: string, fallback: number): number {
    const entry = this.section.options.get(key);
    this.used.add(key);
    if (!entry) return fallback;
    const value = Number(entry.value);
    if (entry.value === '' || !Number.isFinite(value)) {
      throw new CfgError(this.file, entry.line, `"${key}" must be a number, got "${entry.value}"`);
    }
    return value;
  }

  choice<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const entry = this.section.options.get(key);
    this.used.add(key);
    if (!entry) return fallback;
    const value = entry.value.toLowerCase() as T;
    if (!allowed.includes(value)) {
      throw new CfgError(this.file, entry.line, `"${key}" must be one of ${allowed.join('|')}, got "${entry.value}"`);
    }
    return value;
  }

  /** A comma-separated list of numbers (Darknet's steps=, scales=). */
  list(key: string): number[] {
    const entry = this.section.options.get(key);
    this.used.add(key);
    if (!entry) return [];
    return entry.value.split(',').map((part) => {
      const value = Number(part.trim());
      if (part.trim() === '' || !Number.isFinite(value)) throw new CfgError(this.file, entry.line, `"${key}" must be comma-separated numbers, got "${entry.value}"`);
      return value;
    });
  }

  has(key: string): boolean {
    return this.section.options.has(key);
  }

  /** Keys the front does not understand are an error: a silently ignored key trains another network. */
  rejectUnknown(ignorable: readonly string[] = []): void {
    for (const [key, entry] of this.section.options) {
      if (!this.used.has(key) && !ignorable.includes(key)) {
        throw new CfgError(this.file, entry.line, `[${this.section.type}] key "${key}" is not supported`);
      }
    }
  }
}

// Keys Darknet uses for training schedule or augmentation, accepted and not used by the front.
const NET_IGNORABLE = [
  'subdivisions', 'angle', 'saturation', 'exposure', 'hue', 'gamma', 'step', 'jitter', 'random',
  'min_crop', 'max_crop', 'aspect', 'inputs',
];

export function parseConv(reader: SectionReader): FrontLayer {
  const size = reader.int('size', 1, 1);
  const stride = reader.int('stride', 1, 1);
  const padFlag = reader.int('pad', 0, 0);
  const explicitPadding = reader.int('padding', 0, 0);
  const activation = reader.choice<Activation>('activation', ['leaky', 'linear', 'relu'], 'linear');
  return convLayer(reader.int('filters', 1, 1), size, stride, {
    pad: padFlag ? Math.floor(size / 2) : explicitPadding,
    activation,
    batchNormalize: reader.int('batch_normalize', 0, 0) !== 0,
  });
}

export function parseMaxpool(reader: SectionReader): FrontLayer {
  const stride = reader.int('stride', 1, 1);
  const size = reader.int('size', stride, 1);
  const padding = reader.int('padding', size - 1, 0);
  return maxpoolLayer(size, stride, padding);
}

export function parseCfg(text: string, file = '<cfg>', name = file): ParsedCfg {
  const sections = splitSections(text, file);
  const net = sections[0];
  if (!net || (net.type !== 'net' && net.type !== 'network')) {
    throw new CfgError(file, net?.line ?? 1, `the first section must be [net], got ${net ? `[${net.type}]` : 'nothing'}`);
  }
  const netReader = new SectionReader(net, file);
  const input = {
    height: netReader.int('height', undefined, 1),
    width: netReader.int('width', undefined, 1),
    channels: netReader.int('channels', undefined, 1),
  };
  // Darknet's parse_net_options: adam=1 switches the update to Adam; B1, B2 and eps (keys are read
  // case-insensitively here) are read either way.
  const useAdam = netReader.int('adam', 0, 0) !== 0;
  const adam = { b1: netReader.float('b1', 0.9), b2: netReader.float('b2', 0.999), eps: netReader.float('eps', 0.0000001) };
  const hyper = {
    batch: netReader.int('batch', 1, 1),
    learningRate: netReader.float('learning_rate', 0.001),
    momentum: netReader.float('momentum', 0.9),
    decay: netReader.float('decay', 0.0001),
    schedule: {
      policy: netReader.choice('policy', ['constant', 'steps', 'poly'] as const, 'constant'),
      steps: netReader.list('steps'),
      scales: netReader.list('scales'),
      power: netReader.float('power', 4),
      maxBatches: netReader.int('max_batches', 0, 0),
      burnIn: netReader.int('burn_in', 0, 0),
    },
    ...(useAdam ? { adam } : {}),
  };
  if (hyper.schedule.steps.length !== hyper.schedule.scales.length) {
    throw new CfgError(file, net.line, `[net] has ${hyper.schedule.steps.length} steps but ${hyper.schedule.scales.length} scales`);
  }
  if (hyper.schedule.policy === 'poly' && hyper.schedule.maxBatches === 0) throw new CfgError(file, net.line, '[net] policy=poly needs max_batches');
  netReader.rejectUnknown(NET_IGNORABLE);

  const layers: FrontLayer[] = [];
  let index = 1;
  for (; index < sections.length; index++) {
    const section = sections[index]!;
    const reader = new SectionReader(section, file);
    if (section.type === 'convolutional' || section.type === 'conv') layers.push(parseConv(reader));
    else if (section.type === 'maxpool' || section.type === 'max') layers.push(parseMaxpool(reader));
    else break;
    reader.rejectUnknown();
  }
  if (layers.length === 0) throw new CfgError(file, net.line, 'the network has no leading [convolutional] or [maxpool] layer');
  const network: Network = { name, input, layers, hyper };
  try {
    mapShapes(network);
  } catch (error) {
    throw new CfgError(file, net.line, (error as Error).message);
  }
  return { file, network, tail: sections.slice(index) };
}
