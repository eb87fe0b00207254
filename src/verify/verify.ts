// `edge verify`: train one step of the tile-partitioned front (all devices in this process, through
// the real exchange code) and compare every gradient with tf.grad of the unpartitioned front.
import { createDeviceRuntime } from '../loop/device-runtime.js';
import { runDeviceStep } from '../loop/device-step.js';
import { type Network, mapShapes } from '../model/layers.js';
import { linearLoss, referenceGradients } from '../fused/reference.js';
import type { BackendName } from '../fused/backend-name.js';
import type { Exchange } from '../peers/exchange.js';
import { createInMemoryCluster } from '../peers/in-memory.js';
import type { Grid } from '../tiles/grid.js';
import { type LayerGroup, formatGrouping } from '../tiles/groups.js';
import { copySubRegion } from '../tiles/layout.js';
import { buildTilePlan, planCore } from '../tiles/plan.js';
import { verifyData } from './verify-data.js';

export interface VerifyRequest {
  readonly net: Network;
  readonly grid: Grid;
  readonly forwardGroups: readonly LayerGroup[];
  readonly backwardGroups: readonly LayerGroup[];
  readonly batch: number;
  /** Which stashes reusing windows recompute (tiles/plan.ts recomputesStash; default its rule). */
  readonly recomputeStashFlops?: number;
  /** Devices the tiles are spread over (default: one per tile). */
  readonly devices?: number;
  readonly seed: number;
  readonly tolerance: number;
  /** Compute worker threads per device (default 0: every device computes on this thread). */
  readonly workers?: number;
  /** The bundled worker entry when this code does not run from dist/ (tests). */
  readonly workerScript?: URL;
  /** Backend of the compute workers (this thread's backend is whatever is active). */
  readonly backend?: BackendName;
  /** Heap bytes a band of a layer may keep live (tests lower it so small maps are computed in bands). */
  readonly bandBytes?: number;
  /** Interposes on every device's exchange (instrumentation, fault injection in tests). */
  readonly wrapExchange?: (exchange: Exchange) => Exchange;
}

export interface Comparison {
  readonly name: string;
  readonly relError: number;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly maxRelError: number;
  readonly tolerance: number;
  readonly worst: string;
  readonly model: string;
  readonly input: string;
  readonly grid: string;
  readonly forwardGroups: string;
  readonly backwardGroups: string;
  readonly batch: number;
  readonly devices: number;
  /** All devices ended with bit-identical weight gradients. */
  readonly devicesAgree: boolean;
  readonly comparisons: readonly Comparison[];
  readonly seconds: { readonly reference: number; readonly tiled: number };
}

/** max |a - b| relative to the largest magnitude of the reference (absolute when it is all zero). */
export function relativeError(actual: Float32Array, reference: Float32Array): number {
  if (actual.length !== reference.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    const d = Math.abs(actual[i]! - reference[i]!);
    if (!(d <= diff)) diff = d; // NaN propagates
    scale = Math.max(scale, Math.abs(reference[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

function bitEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.every((v, i) => v === y[i]);
}

export async function verify(request: VerifyRequest): Promise<VerifyReport> {
  const { net, grid, batch, seed } = request;
  const maps = mapShapes(net);
  const tiles = grid.rows * grid.cols;
  const plan = buildTilePlan({ ...request, devices: request.devices ?? tiles });
  const { params, input, outputWeights, inputLayout, stepInputs } = verifyData(net, batch, seed);

  let started = performance.now();
  const reference = await referenceGradients(net, params, input, linearLoss(outputWeights), batch);
  const referenceSeconds = (performance.now() - started) / 1000;

  started = performance.now();
  const cluster = createInMemoryCluster(plan.devices, plan.tileDevice);
  const runtimes = await Promise.all(cluster.map((exchange) =>
    createDeviceRuntime({ plan, rank: exchange.rank, params, threads: request.workers ?? 0, backend: request.backend ?? 'wasm', wantInputGradient: true,
      ...(request.workerScript ? { workerScript: request.workerScript } : {}), ...(request.bandBytes !== undefined ? { bandBytes: request.bandBytes } : {}) })));
  let results;
  try {
    await Promise.all(runtimes.map((r) => r.engine.loadParams()));
    results = await Promise.all(
      cluster.map((exchange, rank) =>
        runDeviceStep(runtimes[rank]!, request.wrapExchange ? request.wrapExchange(exchange) : exchange, stepInputs, { step: 0, wantInputGradient: true }),
      ),
    );
  } finally {
    await Promise.all(runtimes.map((r) => r.engine.close()));
  }
  const tiledSeconds = (performance.now() - started) / 1000;

  const comparisons: Comparison[] = [];
  const inputGradient = new Float32Array(input.length);
  results.forEach((result) => {
    for (const [tile, core] of result.inputGradient) {
      const region = planCore(plan, 0, tile);
      copySubRegion(core, { ...inputLayout, region }, inputGradient, inputLayout, region);
    }
  });
  comparisons.push({ name: 'input gradient', relError: relativeError(inputGradient, reference.inputGradient) });
  let devicesAgree = true;
  reference.weightGradients.forEach((ref, l) => {
    if (!ref) return;
    const mine = results[0]!.weightGradients[l]!;
    comparisons.push({ name: `layer ${l} filter`, relError: relativeError(mine.dFilter, ref.dFilter) });
    comparisons.push({ name: `layer ${l} biases`, relError: relativeError(mine.dBiases, ref.dBiases) });
    if (ref.dScales) comparisons.push({ name: `layer ${l} scales`, relError: relativeError(mine.dScales ?? new Float32Array(), ref.dScales) });
    for (const other of results.slice(1)) {
      const theirs = other.weightGradients[l]!;
      devicesAgree &&= bitEqual(mine.dFilter, theirs.dFilter) && bitEqual(mine.dBiases, theirs.dBiases);
    }
  });
  const worst = comparisons.reduce((a, b) => (!(b.relError <= a.relError) ? b : a));
  return {
    ok: worst.relError <= request.tolerance && devicesAgree,
    maxRelError: worst.relError,
    tolerance: request.tolerance,
    worst: worst.name,
    model: net.name,
    input: `${maps[0]!.height}x${maps[0]!.width}x${maps[0]!.channels}`,
    grid: `${grid.rows}x${grid.cols}`,
    forwardGroups: formatGrouping(request.forwardGroups),
    backwardGroups: formatGrouping(request.backwardGroups),
    batch,
    devices: plan.devices,
    devicesAgree,
    comparisons,
    seconds: { reference: referenceSeconds, tiled: tiledSeconds },
  };
}
