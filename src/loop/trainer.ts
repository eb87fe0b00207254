// The training loop of one device: data, the front's step over the exchange, the loss (the tail on
// the head, or a squared error for front-only models), the optimizer, weight checksums across devices
// and checkpoints. Every device runs the same loop on the same summed gradients, so their front
// weights stay identical (and are checked to be); the tail's weights live on the head only.
import { createHash } from 'node:crypto';
import { tailClasses, tailTruthKind } from '../model/tail-layers.js';
import type { FrontParams, TailParams } from '../model/weights.js';
import type { Exchange } from '../peers/exchange.js';
import { type RegionLayout, copySubRegion, extractSubRegion } from '../tiles/layout.js';
import { HEAD_RANK, clusterSize } from '../tiles/plan.js';
import { wholeMap } from '../tiles/region.js';
import { saveCheckpoint } from '../train/checkpoint.js';
import { type OptimizerState, type WeightGradient, applyUpdate } from '../train/optimizer.js';
import { syntheticTarget } from '../train/synthetic.js';
import { type Evaluation, type TrainingBatch, type TrainingData, type Truth, syntheticData } from '../train/training-data.js';
import type { TailResult } from '../train/tail.js';
import { type DeviceRuntime, type PhaseSeconds, runDeviceStep } from './device-step.js';
import { HeadExchange } from './head-exchange.js';
import { concatFloats, splitFloats } from '../train/float-parts.js';
import { InputExchange } from './input-exchange.js';
import { CHECKSUM_PIECES, checksumBucket, lossBucket, planHash, tailBucket } from './plan-messages.js';
import { ReplicaExchange } from './replica-exchange.js';

export interface StepReport {
  readonly phases: PhaseSeconds;
  readonly step: number;
  readonly loss: number;
  readonly learningRate: number;
  readonly seconds: number;
  /** The head's tail forward and backward (0 elsewhere); it overlaps the front's phases, which run while it waits. */
  readonly tailSeconds: number;
}

export interface TrainerOptions {
  readonly runtime: DeviceRuntime;
  readonly exchange: Exchange;
  /** Updated in place; the arrays the runtime's compute threads read. */
  readonly params: FrontParams;
  readonly state: OptimizerState;
  /** The tail's parameters and momentum: required on the head (rank 0) when the plan has a tail, unused elsewhere. Updated in place. */
  readonly tail?: { readonly params: TailParams; readonly state: OptimizerState };
  /** Where batches come from; by default seeded synthetic images (and labels for a tail). */
  readonly data?: TrainingData;
  /** Every device reads the data set itself instead of receiving its input regions from the head. */
  readonly dataOnEveryDevice?: boolean;
  readonly firstStep: number;
  readonly steps: number;
  readonly seed: number;
  readonly checksumEvery: number;
  readonly checkpoint?: { readonly dir: string; readonly every: number };
  readonly onStep?: (report: StepReport) => void;
  /** Head only: evaluation on held-out data before the first step, every `every` steps and after the last. */
  readonly evaluate?: { readonly every: number; run(): Promise<Evaluation[]> };
  readonly onEvaluation?: (step: number, results: readonly Evaluation[]) => void;
  readonly onCheckpoint?: (step: number, dir: string) => void;
}

export class WeightsDivergedError extends Error {
  override name = 'WeightsDivergedError';
}

/** A hash of every parameter's bytes. */
export function weightsChecksum(params: FrontParams): string {
  const hash = createHash('sha256');
  for (const p of params) {
    if (!p) continue;
    for (const a of [p.filter, p.biases, ...(p.bn ? [p.bn.scales, p.bn.mean, p.bn.variance] : [])]) hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  return hash.digest('hex').slice(0, 12);
}

/** Every device's checksum reaches every device: each fills its own slots (16-bit pieces, exact in float). */
async function compareChecksums(exchange: Exchange, params: FrontParams, step: number): Promise<void> {
  const mine = weightsChecksum(params);
  const pieces = CHECKSUM_PIECES;
  const slots = new Float32Array(exchange.size * pieces);
  for (let k = 0; k < pieces; k++) slots[exchange.rank * pieces + k] = parseInt(mine.slice(k * 4, k * 4 + 4), 16);
  await exchange.allReduceSum(checksumBucket(step), slots);
  const all = Array.from({ length: exchange.size }, (_, r) =>
    Array.from({ length: pieces }, (_, k) => slots[r * pieces + k]!.toString(16).padStart(4, '0')).join(''));
  const differing = all.flatMap((c, r) => (c !== mine ? [r] : []));
  if (differing.length > 0) {
    throw new WeightsDivergedError(`after step ${step} the weights differ between devices: ${all.map((c, r) => `rank ${r} ${c}`).join(', ')}`);
  }
}

/**
 * The front-only loss over a core: 0.5 * sum((output - target)^2) / outputsPerImage, and its
 * gradient. Dividing by the outputs of one image keeps the gradient's scale independent of the
 * input size (a plain sum over 38x38x256 outputs makes Darknet's learning rates diverge).
 */
export function squaredError(output: Float32Array, target: Float32Array, outputsPerImage: number): { loss: number; gradient: Float32Array } {
  const gradient = new Float32Array(output.length);
  const scale = 1 / outputsPerImage;
  let loss = 0;
  for (let i = 0; i < output.length; i++) {
    const d = output[i]! - target[i]!;
    gradient[i] = d * scale;
    loss += 0.5 * d * d * scale;
  }
  return { loss, gradient };
}

/** Images `from` .. `to` of a batch and their labels. */
function batchSlice(whole: TrainingBatch, images: number, from: number, to: number): TrainingBatch {
  const perImage = whole.images.length / images;
  const truth: Truth | null = whole.truth === null ? null
    : whole.truth.kind === 'boxes' ? { kind: 'boxes', boxes: whole.truth.boxes.slice(from, to) } : { kind: 'classes', classIds: whole.truth.classIds.subarray(from, to) };
  return { images: whole.images.subarray(from * perImage, to * perImage), truth };
}

/** Sums the replicas' tail gradients in place, in one reduction. */
async function sumTailGradients(cluster: Exchange, step: number, gradients: readonly (WeightGradient | null)[]): Promise<void> {
  const parts = gradients.flatMap((g) => (g ? [g.dFilter, g.dBiases, ...(g.dScales ? [g.dScales] : [])] : []));
  const all = concatFloats(parts);
  await cluster.allReduceSum(tailBucket(step), all);
  splitFloats(all, parts, 'the summed tail gradient does not fit the tail');
}

export async function train(options: TrainerOptions): Promise<void> {
  const { runtime, exchange: cluster, params, state } = options;
  const { plan } = runtime;
  const { net, batch } = plan;
  // Data-parallel replicas run the tile plan on their own (strips stay on the device) and train
  // images replica * batch .. of the cluster's batch; sums (gradients, loss, checksums) span the cluster.
  const replicated = plan.replicas > 1;
  if (cluster.size !== clusterSize(plan)) throw new Error(`the plan is for ${clusterSize(plan)} devices, the exchange connects ${cluster.size}`);
  const exchange = replicated ? new ReplicaExchange(plan, cluster) : cluster;
  const clusterBatch = batch * plan.replicas;
  const mine = (whole: TrainingBatch): TrainingBatch =>
    (replicated ? batchSlice(whole, clusterBatch, cluster.rank * batch, (cluster.rank + 1) * batch) : whole);
  const inputMap = plan.maps[0]!;
  const outputMap = plan.maps[plan.maps.length - 1]!;
  const inputLayout: RegionLayout = { region: wholeMap(inputMap.height, inputMap.width), batch, channels: inputMap.channels };
  const outputLayout: RegionLayout = { region: wholeMap(outputMap.height, outputMap.width), batch, channels: outputMap.channels };
  const hash = planHash(plan);
  const hasTail = plan.tail.length > 0;
  // The head runs the tail; every replica is its own head.
  const isHead = exchange.rank === HEAD_RANK;
  const tail = hasTail && isHead ? options.tail : undefined;
  if (hasTail && isHead && !tail) throw new Error(`rank ${cluster.rank} runs the tail but was given no tail parameters`);
  const truthKind = tailTruthKind(plan.tail);
  const data = options.data ?? syntheticData(net, clusterBatch, options.seed, truthKind && { kind: truthKind, classes: tailClasses(outputMap, plan.tail) });
  if (!data.synthetic && !hasTail) throw new Error(`training on ${data.description} needs a tail that uses its labels; a front-only model trains on --data synthetic`);
  // A data set is read on the head only, which sends every tile the input it reads (unless every
  // device reads it itself: --data-local).
  const readsData = data.synthetic || isHead || options.dataOnEveryDevice === true;
  const inputs = data.synthetic || options.dataOnEveryDevice || replicated ? null : new InputExchange(plan, exchange);
  const target = hasTail ? null : mine({ images: syntheticTarget(net, clusterBatch, options.seed), truth: null }).images;
  // tfjs loads only where the tail runs: the other devices' schedulers never need it.
  const runTail = tail ? (await import('../train/tail.js')).runTail : null;
  const evaluate = async (step: number) => {
    if (!options.evaluate || cluster.rank !== HEAD_RANK) return;
    options.onEvaluation?.(step, await options.evaluate.run());
  };
  const lastStep = options.firstStep + options.steps;
  if (options.firstStep === 0 && options.steps > 0) await evaluate(0);
  for (let step = options.firstStep; step < lastStep; step++) {
    const started = performance.now();
    const loaded = readsData ? mine(data.batch(step)) : null;
    if (inputs) await inputs.distribute(step, isHead ? loaded!.images : null);
    let localLoss = 0;
    let tailMs = 0;
    // With a tail, the head gathers the front's output, runs the tail and scatters its gradient; the
    // exchange is opened before the front starts so that early cores land in place.
    const head = hasTail ? new HeadExchange(plan, exchange, step) : null;
    let tailStep: Promise<TailResult> | null = null;
    if (head && tail && runTail) {
      const truth = loaded!.truth;
      if (!truth || truth.kind !== truthKind) throw new Error(`the tail needs ${truthKind === 'boxes' ? 'boxes' : 'a class'} per image, ${data.description} gives ${truth ? truth.kind : 'no labels'}`);
      const labels = truth.kind === 'boxes' ? truth.boxes : truth.classIds;
      const imagesSeen = step * clusterBatch;
      tailStep = head.gathered().then(async (output) => {
        const tailStarted = performance.now();
        const result = await runTail(outputMap, plan.tail, tail.params, output, labels, batch, { imagesSeen });
        tailMs = performance.now() - tailStarted;
        head.scatter(result.outputGradient);
        return result;
      });
      tailStep.catch((error: Error) => head.fail(error));
    }
    await runtime.engine.loadParams();
    const { weightGradients: gradients, phases } = await runDeviceStep(runtime, exchange, {
      input: inputs
        ? (tile, region, into) => inputs.input(tile, region, into)
        : (_tile, region, into) => copySubRegion(loaded!.images, inputLayout, into, { ...inputLayout, region }, region),
      outputGradient: head
        ? (tile, _core, output) => head.exchangeTile(tile, output)
        : async (_tile, core, output) => {
          const { loss, gradient } = squaredError(output, extractSubRegion(target!, outputLayout, core), outputMap.height * outputMap.width * outputMap.channels);
          localLoss += loss;
          return gradient;
        },
    }, { step, wantInputGradient: false });
    const tailResult = tailStep ? await tailStep : null;
    // Only the head has a tail loss; the others contribute 0 to the sum.
    if (tailResult) localLoss = tailResult.loss;
    if (tailResult && replicated) await sumTailGradients(cluster, step, tailResult.gradients);
    const loss = new Float32Array([localLoss]);
    await cluster.allReduceSum(lossBucket(step), loss);
    // Every device sees the same summed loss, so all stop here together, before a non-finite
    // gradient reaches the weights or a checkpoint.
    if (!Number.isFinite(loss[0]!)) {
      throw new Error(`step ${step + 1}: the loss is ${loss[0]}, training diverged; the weights were not updated and the last checkpoint is intact (try a lower --learning-rate)`);
    }
    const rate = applyUpdate(params, state, gradients, net.hyper, step);
    if (tail && tailResult) applyUpdate(tail.params, tail.state, tailResult.gradients, net.hyper, step);
    const done = step + 1;
    if (options.checksumEvery > 0 && done % options.checksumEvery === 0) await compareChecksums(cluster, params, step);
    if (options.checkpoint && options.checkpoint.every > 0 && done % options.checkpoint.every === 0) {
      saveCheckpoint(options.checkpoint.dir, net, params, state, done, hash, clusterBatch, tail && { layers: plan.tail, ...tail });
      options.onCheckpoint?.(done, options.checkpoint.dir);
    }
    options.onStep?.({ phases, step: done, loss: loss[0]! / clusterBatch, learningRate: rate, seconds: (performance.now() - started) / 1000, tailSeconds: tailMs / 1000 });
    const every = options.evaluate?.every ?? 0;
    if (done === lastStep || (every > 0 && done % every === 0)) await evaluate(done);
  }
}
