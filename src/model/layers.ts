// Layer descriptions of the tile-partitioned front and Darknet's shape rules for them.

export type Activation = 'leaky' | 'linear' | 'relu';

export interface ConvLayer {
  readonly kind: 'conv';
  readonly filters: number;
  readonly size: number;
  readonly stride: number;
  /** Zero rows/columns before the map (Darknet pads both sides by this much). */
  readonly padBefore: number;
  /** Total padding along one axis, as Darknet counts it in its output-size formula. */
  readonly padTotal: number;
  readonly activation: Activation;
  readonly batchNormalize: boolean;
}

export interface MaxpoolLayer {
  readonly kind: 'maxpool';
  readonly size: number;
  readonly stride: number;
  /** Darknet's maxpool offset: -padding/2 rows before, the rest implicitly after. */
  readonly padBefore: number;
  readonly padTotal: number;
}

export type FrontLayer = ConvLayer | MaxpoolLayer;

export interface MapShape {
  readonly height: number;
  readonly width: number;
  readonly channels: number;
}

export interface LearningRatePolicy {
  readonly policy: 'constant' | 'steps' | 'poly';
  /** For `steps`: at each of these batch numbers the rate is multiplied by the matching scale. */
  readonly steps: readonly number[];
  readonly scales: readonly number[];
  /** For `poly` (and burn-in): the exponent. */
  readonly power: number;
  readonly maxBatches: number;
  /** Batches over which the rate ramps up as (batch / burnIn)^power; 0 disables. */
  readonly burnIn: number;
}

export interface NetHyper {
  readonly batch: number;
  readonly learningRate: number;
  readonly momentum: number;
  readonly decay: number;
  readonly schedule: LearningRatePolicy;
  /** Darknet's `adam=1` with its B1, B2 and eps; absent: SGD with momentum. */
  readonly adam?: AdamHyper;
}

export interface AdamHyper {
  readonly b1: number;
  readonly b2: number;
  readonly eps: number;
}

export const CONSTANT_SCHEDULE: LearningRatePolicy = { policy: 'constant', steps: [], scales: [], power: 4, maxBatches: 0, burnIn: 0 };

export interface Network {
  readonly name: string;
  readonly input: MapShape;
  readonly layers: readonly FrontLayer[];
  readonly hyper: NetHyper;
}

/** Darknet's output size along one axis: floor((n + padTotal - size) / stride) + 1. */
export function outputExtent(layer: FrontLayer, n: number): number {
  return Math.floor((n + layer.padTotal - layer.size) / layer.stride) + 1;
}

/** Shapes of every map: index 0 is the input, index l+1 the output of layer l. */
export function mapShapes(net: Pick<Network, 'input' | 'layers'>): MapShape[] {
  const maps: MapShape[] = [net.input];
  net.layers.forEach((layer, index) => {
    const prev = maps[maps.length - 1]!;
    const height = outputExtent(layer, prev.height);
    const width = outputExtent(layer, prev.width);
    if (height < 1 || width < 1) {
      throw new Error(
        `layer ${index} (${layer.kind} size ${layer.size} stride ${layer.stride}) turns a ` +
          `${prev.height}x${prev.width} map into ${height}x${width}: the input is too small`,
      );
    }
    const channels = layer.kind === 'conv' ? layer.filters : prev.channels;
    maps.push({ height, width, channels });
  });
  return maps;
}

export function convLayer(
  filters: number,
  size: number,
  stride = 1,
  options: { pad?: number; activation?: Activation; batchNormalize?: boolean } = {},
): ConvLayer {
  const pad = options.pad ?? Math.floor(size / 2);
  return {
    kind: 'conv',
    filters,
    size,
    stride,
    padBefore: pad,
    padTotal: 2 * pad,
    activation: options.activation ?? 'leaky',
    batchNormalize: options.batchNormalize ?? false,
  };
}

export function maxpoolLayer(size: number, stride = size, padding = size - 1): MaxpoolLayer {
  return { kind: 'maxpool', size, stride, padBefore: Math.floor(padding / 2), padTotal: padding };
}

/** Multiply-adds of one image through the layer, times two (a FLOP count). */
export function forwardFlops(layer: FrontLayer, input: MapShape, output: MapShape): number {
  if (layer.kind === 'maxpool') return output.height * output.width * output.channels * layer.size * layer.size;
  return 2 * output.height * output.width * output.channels * layer.size * layer.size * input.channels;
}
