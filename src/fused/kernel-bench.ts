// Timings of the runtime's own layer ops (layer-ops.ts, tensor-io.ts) on the active backend, for
// `edge profile`: the conv ops, maxpool and the elementwise passes around them, at shapes the caller
// chooses (a tile of a layer's map). Each op gets one untimed run (it grows the wasm heap and sets up
// XNNPACK operators, as a training step's first run does) and then the best of `repeats` runs.
// Every op here is synchronous on the wasm, cpu and tensorflow backends, so timing the call times
// the kernel. Also the body of the compute workers' `bench` message (parallel efficiency).
import * as tf from '@tensorflow/tfjs-core';
import type { ConvLayer, MaxpoolLayer } from '../model/layers.js';
import type { ConvParams } from '../model/weights.js';
import { fillUniform, seededRandom } from '../model/weights.js';
import {
  type ConvTensors, convInputGradient, convOutputBackward, convTensors, convolve, disposeLayerTensors, filterGradientSum, inputGradientFilter,
  maxpoolBackward, maxpoolForward, normalizeActivate,
} from './layer-ops.js';
import { type MapView, addRows, tensorFromRows, writeRows } from './tensor-io.js';

export type Shape4 = readonly [number, number, number, number];

/** A conv layer run on a tile: `read` is its padded input [batch, rows, cols, channels] (VALID conv). */
export interface ConvBenchSpec {
  readonly layer: ConvLayer;
  readonly read: Shape4;
  /** Rows and columns of `read` that are zero padding (materialised by the padding copy); the rest is held. */
  readonly padTop: number;
  readonly padLeft: number;
}

export interface MaxpoolBenchSpec {
  readonly layer: MaxpoolLayer;
  readonly read: Shape4;
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** VALID output extent of a layer over `read`. */
export function validOutput(layer: ConvLayer | MaxpoolLayer, read: Shape4): Shape4 {
  const extent = (n: number) => Math.floor((n - layer.size) / layer.stride) + 1;
  return [read[0], extent(read[1]), extent(read[2]), layer.kind === 'conv' ? layer.filters : read[3]];
}

/** FLOPs the cost model counts for one pass of the layer over `read` (src/model/layers.ts forwardFlops, batch included). */
export function benchFlops(layer: ConvLayer | MaxpoolLayer, read: Shape4): number {
  const out = validOutput(layer, read);
  const window = layer.size * layer.size;
  return layer.kind === 'conv' ? 2 * size(out) * window * read[3] : size(out) * window;
}

function randomTensor(shape: Shape4, random: () => number): tf.Tensor4D {
  return tf.tensor4d(fillUniform(new Float32Array(size(shape)), random, -1, 1), shape as [number, number, number, number]);
}

function layerTensors(layer: ConvLayer, inChannels: number, random: () => number): ConvTensors {
  const n = layer.filters;
  const uniform = (count: number, low: number, high: number) => fillUniform(new Float32Array(count), random, low, high);
  const params: ConvParams = {
    filter: uniform(layer.size * layer.size * inChannels * n, -0.1, 0.1),
    biases: uniform(n, -0.1, 0.1),
    ...(layer.batchNormalize ? { bn: { scales: uniform(n, 0.5, 1.5), mean: uniform(n, -0.1, 0.1), variance: uniform(n, 0.5, 1.5) } } : {}),
  };
  return convTensors(params, layer, inChannels);
}

/** Seconds of the fastest of `repeats` runs of `run` after one untimed run; `run` disposes what it makes. */
export function bestSeconds(run: () => void, repeats: number): number {
  run();
  let best = Infinity;
  for (let i = 0; i < Math.max(1, repeats); i++) {
    const started = performance.now();
    run();
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  return best;
}

export interface ConvTimings {
  readonly flops: number;
  readonly forwardSeconds: number;
  readonly inputGradientSeconds: number;
  readonly filterGradientSeconds: number;
}

/** The filter gradient of one band, summed and written to a weight-gradient bucket as tile-compute.ts does. */
function filterGradient(layer: ConvLayer, t: ConvTensors, padded: tf.Tensor4D, dConv: tf.Tensor4D, bucket: Float32Array): void {
  const sum = filterGradientSum(layer, t.filter.shape[2]);
  sum.add(padded, dConv);
  sum.writeTo(bucket);
}

/** The three conv kernels of one layer over `read` (the whole tile as one band). */
export function timeConv(spec: ConvBenchSpec, repeats: number, seed = 1): ConvTimings {
  const { layer, read } = spec;
  const random = seededRandom(seed);
  const t = layerTensors(layer, read[3], random);
  const padded = randomTensor(read, random);
  const dConv = randomTensor(validOutput(layer, read), random);
  const bucket = new Float32Array(t.filter.size);
  // Made once, as the runtime keeps it for every tile and band of the step (ComputeParams).
  const gradientFilter = inputGradientFilter(layer, t.filter);
  try {
    return {
      flops: benchFlops(layer, read),
      forwardSeconds: bestSeconds(() => convolve(layer, t, padded).dispose(), repeats),
      inputGradientSeconds: bestSeconds(() => convInputGradient(layer, gradientFilter, dConv, read).dispose(), repeats),
      filterGradientSeconds: bestSeconds(() => filterGradient(layer, t, padded, dConv, bucket), repeats),
    };
  } finally {
    tf.dispose([padded, dConv, gradientFilter]);
    disposeLayerTensors([t]);
  }
}

/** A layer's elementwise passes in one tile task, over `read` (padding as in ConvBenchSpec). */
export interface ElementwiseBenchSpec {
  readonly layer: ConvLayer | MaxpoolLayer;
  readonly read: Shape4;
  readonly padTop: number;
  readonly padLeft: number;
  /** The previous layer when it is a conv with batch norm: backward recomputes this layer's input from its pre-norm stash. */
  readonly previous: ConvLayer | null;
}

export interface ElementwiseTimings {
  readonly forwardSeconds: number;
  readonly backwardSeconds: number;
  /** What the cost model charges for them (compute-cost.ts): 3 x (read + output), conv 3 x (read + 2 x output). */
  readonly elements: number;
}

/**
 * Everything but the kernels, as tile-compute.ts runs it (the whole tile as one band). Forward: the
 * input from its arena buffer, the padding copy, (conv) batch norm + activation, the stash copy.
 * Backward: the input from the previous layer's stash (re-normalised when that layer has batch
 * norm), the padding copy, this layer's stash and output gradient from their buffers, (conv)
 * activation and batch-norm backward, adding the padded input gradient into its buffer.
 */
export function timeElementwise(spec: ElementwiseBenchSpec, repeats: number, seed = 1): ElementwiseTimings {
  const { layer, read, padTop, padLeft, previous } = spec;
  const random = seededRandom(seed);
  const out = validOutput(layer, read);
  const held: Shape4 = [read[0], read[1] - padTop, read[2] - padLeft, read[3]];
  const padValue = layer.kind === 'conv' ? 0 : -Infinity;
  const padded = (x: tf.Tensor4D): tf.Tensor4D => (padTop || padLeft ? tf.pad(x, [[0, 0], [padTop, 0], [padLeft, 0], [0, 0]], padValue) : x);
  const t = layer.kind === 'conv' ? layerTensors(layer, 1, random) : null;
  // Only its batch norm and activation run: one input channel keeps its filter small.
  const before = previous ? layerTensors(previous, 1, random) : null;
  const inputMap: MapView = { data: fillUniform(new Float32Array(size(held)), random, -1, 1), shape: held };
  const stashMap: MapView = { data: fillUniform(new Float32Array(size(out)), random, -1, 1), shape: out };
  const dyMap: MapView = { data: fillUniform(new Float32Array(size(out)), random, -1, 1), shape: out };
  const partialMap: MapView = { data: new Float32Array(size(held)), shape: held };
  const rows = (map: MapView) => tensorFromRows(map, { start: 0, end: map.shape[1] });
  const kernelOut = randomTensor(out, random);
  const dPadded = randomTensor(read, random);
  const drop = (...tensors: tf.Tensor[]) => tf.dispose([...new Set(tensors)]);
  try {
    const forwardSeconds = bestSeconds(() => {
      const x = rows(inputMap);
      const p = padded(x);
      if (t && layer.kind === 'conv') {
        const y = normalizeActivate(layer, t, kernelOut);
        writeRows(layer.batchNormalize ? kernelOut : y, stashMap, 0);
        drop(y);
      } else writeRows(kernelOut, stashMap, 0);
      drop(x, p);
    }, repeats);
    const backwardSeconds = bestSeconds(() => {
      const kept = rows(inputMap);
      const input = before && previous ? normalizeActivate(previous, before, kept) : kept;
      const p = padded(input);
      const key = rows(stashMap);
      const dy = rows(dyMap);
      if (t && layer.kind === 'conv') {
        const g = convOutputBackward(layer, t, key, dy);
        drop(g.dConv);
      }
      partialMap.data.fill(0);
      addRows(dPadded, partialMap, -padTop, -padLeft);
      drop(kept, input, p, key, dy);
    }, repeats);
    const elements = 3 * (size(read) + (layer.kind === 'conv' ? 2 : 1) * size(out));
    return { forwardSeconds, backwardSeconds, elements };
  } finally {
    tf.dispose([kernelOut, dPadded]);
    disposeLayerTensors([t, before]);
  }
}

export interface MaxpoolTimings {
  readonly flops: number;
  readonly forwardSeconds: number;
  readonly backwardSeconds: number;
}

export function timeMaxpool(spec: MaxpoolBenchSpec, repeats: number, seed = 1): MaxpoolTimings {
  const random = seededRandom(seed);
  const padded = randomTensor(spec.read, random);
  const output = maxpoolForward(spec.layer, padded);
  const dy = randomTensor(output.shape as unknown as Shape4, random);
  try {
    return {
      flops: benchFlops(spec.layer, spec.read),
      forwardSeconds: bestSeconds(() => maxpoolForward(spec.layer, padded).dispose(), repeats),
      backwardSeconds: bestSeconds(() => maxpoolBackward(spec.layer, padded, output, dy).dispose(), repeats),
    };
  } finally {
    tf.dispose([padded, output, dy]);
  }
}

/**
 * A fixed amount of conv work (forward and filter gradient, `runs` times, after one untimed run):
 * the same job on one worker alone and on all workers at once gives the parallel efficiency.
 */
export function convWorkSeconds(spec: ConvBenchSpec, runs: number, seed = 1): number {
  const random = seededRandom(seed);
  const t = layerTensors(spec.layer, spec.read[3], random);
  const padded = randomTensor(spec.read, random);
  const dy = randomTensor(validOutput(spec.layer, spec.read), random);
  const bucket = new Float32Array(t.filter.size);
  const once = (): void => {
    convolve(spec.layer, t, padded).dispose();
    filterGradient(spec.layer, t, padded, dy, bucket);
  };
  try {
    once();
    const started = performance.now();
    for (let i = 0; i < runs; i++) once();
    return (performance.now() - started) / 1000;
  } finally {
    tf.dispose([padded, dy]);
    disposeLayerTensors([t]);
  }
}
