// A device and link profile: what the cost model needs to know about the hardware, as plain JSON so
// a user can write one for their boards (`edge plan --profile FILE`). Validation names the offending
// field, so a typo fails loudly instead of silently falling back to a default.
import type { FrontLayer } from '../model/layers.js';

/** Rates of the three conv ops for the conv layers a rule matches (first matching rule wins). */
export interface ConvRule {
  /** Matches layers with at most this many input channels; absent: any. */
  readonly maxInChannels?: number;
  /** Matches layers with this kernel size; absent: any. */
  readonly kernel?: number;
  readonly forwardGflops: number;
  readonly inputGradientGflops: number;
  readonly filterGradientGflops: number;
}

export interface ComputeProfile {
  /** Rules in order; the last one has no condition so every conv layer matches one. */
  readonly conv: readonly ConvRule[];
  /** Maxpool FLOPs are output elements x window size (compares). */
  readonly maxpoolForwardGflops: number;
  readonly maxpoolBackwardGflops: number;
  /** Padding copies, batch norm, activation, stash copies: one FLOP per element per pass. */
  readonly elementwiseGflops: number;
  /** Fixed cost of one layer in one tile task (tensor setup, dispatch), forward and backward alike. */
  readonly layerOverheadMs: number;
  /** Fixed cost of one tile task (worker message, assembling its input, summing gradient strips). */
  readonly taskOverheadMs: number;
  /** Compute worker threads per device, one tile task each at a time. */
  readonly workers: number;
  /** Fraction of its one-thread rate a worker keeps while other workers compute (shared caches, memory bus). */
  readonly parallelEfficiency: number;
}

export interface LinkProfile {
  /** Payload rate of one device's link, each direction (full duplex). */
  readonly mibPerSecond: number;
  /** Per-message cost: wire latency plus encoding and handling on both ends. */
  readonly latencyMs: number;
  /** Largest float payload of one message (strips and reduce chunks are cut to it). */
  readonly maxMessageFloats: number;
  /**
   * Device CPU per MiB sent or received (encoding, copies, summing reduce chunks, the kernel's
   * network stack), taken from the same CPU the compute threads use. Optional in JSON: 0.
   */
  readonly cpuMsPerMiB: number;
}

export interface MemoryProfile {
  /** RSS of the device process before compute starts (Node and the scheduler's modules). */
  readonly runtimeMiB: number;
}

export interface DeviceProfile {
  readonly name: string;
  readonly description: string;
  readonly compute: ComputeProfile;
  readonly link: LinkProfile;
  readonly memory: MemoryProfile;
}

export class ProfileError extends Error {
  override name = 'ProfileError';
}

type Json = Record<string, unknown>;

/** Reads fields of one JSON object, naming `path.field` in every complaint, and rejects unknown fields. */
class FieldReader {
  private readonly seen = new Set<string>();

  constructor(
    private readonly source: string,
    private readonly path: string,
    private readonly value: Json,
  ) {}

  static of(source: string, path: string, value: unknown): FieldReader {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ProfileError(`${source}: ${path || 'the profile'} must be an object, got ${describe(value)}`);
    }
    return new FieldReader(source, path, value as Json);
  }

  name(field: string): string {
    return this.path ? `${this.path}.${field}` : field;
  }

  fail(field: string, message: string): never {
    throw new ProfileError(`${this.source}: ${this.name(field)} ${message}`);
  }

  raw(field: string): unknown {
    this.seen.add(field);
    return this.value[field];
  }

  number(field: string, check: 'positive' | 'nonNegative' | 'fraction' | 'positiveInt'): number {
    const v = this.raw(field);
    if (v === undefined) this.fail(field, 'is missing');
    const ok = typeof v === 'number' && Number.isFinite(v) && {
      positive: v > 0,
      nonNegative: v >= 0,
      fraction: v > 0 && v <= 1,
      positiveInt: Number.isInteger(v) && v >= 1,
    }[check];
    if (!ok) {
      const want = { positive: 'a positive number', nonNegative: 'a non-negative number', fraction: 'a number in (0, 1]', positiveInt: 'a positive integer' }[check];
      this.fail(field, `must be ${want}, got ${describe(v)}`);
    }
    return v as number;
  }

  optionalInt(field: string): number | undefined {
    return this.raw(field) === undefined ? undefined : this.number(field, 'positiveInt');
  }

  string(field: string): string {
    const v = this.raw(field);
    if (typeof v !== 'string' || v.trim() === '') this.fail(field, `must be a non-empty string, got ${describe(v)}`);
    return v;
  }

  object(field: string): FieldReader {
    const v = this.raw(field);
    if (v === undefined) this.fail(field, 'is missing');
    return FieldReader.of(this.source, this.name(field), v);
  }

  array(field: string): unknown[] {
    const v = this.raw(field);
    if (!Array.isArray(v) || v.length === 0) this.fail(field, `must be a non-empty array, got ${describe(v)}`);
    return v;
  }

  /** Call last: every field present must have been read. */
  done(): void {
    const unknown = Object.keys(this.value).filter((k) => !this.seen.has(k));
    if (unknown.length > 0) this.fail(unknown[0]!, `is not a profile field (known here: ${[...this.seen].join(', ')})`);
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function readConvRule(source: string, path: string, value: unknown): ConvRule {
  const r = FieldReader.of(source, path, value);
  const maxInChannels = r.optionalInt('maxInChannels');
  const kernel = r.optionalInt('kernel');
  const rule: ConvRule = {
    ...(maxInChannels !== undefined ? { maxInChannels } : {}),
    ...(kernel !== undefined ? { kernel } : {}),
    forwardGflops: r.number('forwardGflops', 'positive'),
    inputGradientGflops: r.number('inputGradientGflops', 'positive'),
    filterGradientGflops: r.number('filterGradientGflops', 'positive'),
  };
  r.done();
  return rule;
}

/** Validates a parsed JSON value as a profile; `source` (a file name) prefixes every error. */
export function parseProfile(value: unknown, source: string): DeviceProfile {
  const top = FieldReader.of(source, '', value);
  const name = top.string('name');
  const description = top.raw('description') === undefined ? '' : top.string('description');

  const c = top.object('compute');
  const conv = c.array('conv').map((rule, i) => readConvRule(source, c.name(`conv[${i}]`), rule));
  const last = conv[conv.length - 1]!;
  if (last.maxInChannels !== undefined || last.kernel !== undefined) {
    c.fail(`conv[${conv.length - 1}]`, 'must have no maxInChannels or kernel: the last rule is the one every other conv layer uses');
  }
  const compute: ComputeProfile = {
    conv,
    maxpoolForwardGflops: c.number('maxpoolForwardGflops', 'positive'),
    maxpoolBackwardGflops: c.number('maxpoolBackwardGflops', 'positive'),
    elementwiseGflops: c.number('elementwiseGflops', 'positive'),
    layerOverheadMs: c.number('layerOverheadMs', 'nonNegative'),
    taskOverheadMs: c.number('taskOverheadMs', 'nonNegative'),
    workers: c.number('workers', 'positiveInt'),
    parallelEfficiency: c.number('parallelEfficiency', 'fraction'),
  };
  c.done();

  const l = top.object('link');
  const link: LinkProfile = {
    mibPerSecond: l.number('mibPerSecond', 'positive'),
    latencyMs: l.number('latencyMs', 'nonNegative'),
    maxMessageFloats: l.number('maxMessageFloats', 'positiveInt'),
    // Profiles written before it existed stay valid: they modelled communication as free on the CPU.
    cpuMsPerMiB: l.raw('cpuMsPerMiB') === undefined ? 0 : l.number('cpuMsPerMiB', 'nonNegative'),
  };
  l.done();

  const m = top.object('memory');
  const memory: MemoryProfile = { runtimeMiB: m.number('runtimeMiB', 'nonNegative') };
  m.done();
  top.done();
  return { name, description, compute, link, memory };
}

/** Parses profile text (JSON), naming the file in every error. */
export function parseProfileText(text: string, source: string): DeviceProfile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ProfileError(`${source}: not valid JSON: ${(error as Error).message}`);
  }
  return parseProfile(value, source);
}

/** The rule a conv layer with `inChannels` input channels uses. */
export function convRule(profile: DeviceProfile, layer: FrontLayer, inChannels: number): ConvRule {
  const rule = profile.compute.conv.find((r) =>
    (r.maxInChannels === undefined || inChannels <= r.maxInChannels) && (r.kernel === undefined || r.kernel === layer.size));
  // parseProfile guarantees a catch-all last rule; a hand-built profile might not have one.
  if (!rule) throw new ProfileError(`profile ${profile.name}: no conv rule matches a ${layer.size}x${layer.size} layer with ${inChannels} input channels`);
  return rule;
}

/** The same profile with another worker count (a device started with --workers N). */
export function withWorkers(profile: DeviceProfile, workers: number): DeviceProfile {
  if (!Number.isInteger(workers) || workers < 1) throw new ProfileError(`workers must be a positive integer, got ${workers}`);
  return { ...profile, compute: { ...profile.compute, workers } };
}
