// `--data`: seeded synthetic batches, or a Darknet list file read with the layout the tail's loss
// needs (a class per image for a softmax tail, boxes for a [region] tail). Problems with samples are
// reported with file and line; `--bad-samples skip` leaves them out, `fail` stops at the first.
import { openClassificationList } from '../data/classification-set.js';
import type { OnBadSample } from '../data/data-error.js';
import { readNames } from '../data/list-file.js';
import type { MapShape, Network } from '../model/layers.js';
import { type FrontParams, type TailParams, frontOutput } from '../model/weights.js';
import { type TailLayer, tailClasses, tailTruthKind } from '../model/tail-layers.js';
import { openDetectionList } from '../data/detection-set.js';
import { type Evaluation, type TrainingData, classificationData, detectionData, syntheticData } from './training-data.js';

export interface DataRequest {
  /** `synthetic` or a list file. */
  readonly source: string;
  /** Class names, one a line (Darknet's .names): required for a classification list. */
  readonly names?: string;
  readonly onBadSample: OnBadSample;
  readonly net: Network;
  readonly frontOutput: MapShape;
  readonly tail: readonly TailLayer[];
  readonly batch: number;
  readonly seed: number;
  readonly log: (line: string) => void;
}

export function openTrainingData(request: DataRequest): TrainingData {
  const { net, tail, batch, seed } = request;
  const truthKind = tailTruthKind(tail);
  const classes = tail.length > 0 ? tailClasses(request.frontOutput, tail) : 0;
  if (request.source === 'synthetic') return syntheticData(net, batch, seed, truthKind && { kind: truthKind, classes });
  if (truthKind === null) throw new Error(`--data ${request.source}: the model has no tail with a loss to learn its labels; add one to the cfg or use --data synthetic`);
  if (truthKind === 'boxes') {
    // Darknet's detection layout: labels beside the images (or under labels/), classes from [region].
    const set = openDetectionList(request.source, { classes, onBadSample: request.onBadSample });
    reportSkipped(set.report.skipped, set.report.problems, request.log);
    return detectionData(set, net, batch, seed);
  }
  if (!request.names) throw new Error(`--data ${request.source}: a classification list needs --names FILE (one class name a line)`);
  const names = readNames(request.names);
  if (names.length !== classes) throw new Error(`--names ${request.names} has ${names.length} classes, the tail's softmax ${classes}`);
  const set = openClassificationList(request.source, names, { onBadSample: request.onBadSample });
  reportSkipped(set.report.skipped, set.report.problems, request.log);
  return classificationData(set, net, batch, seed);
}

function reportSkipped(skipped: number, problems: readonly string[], log: (line: string) => void): void {
  if (skipped === 0) return;
  log(`skipped ${skipped} bad sample${skipped > 1 ? 's' : ''}:`);
  for (const problem of problems.slice(0, 10)) log(`  ${problem}`);
  if (problems.length > 10) log(`  ... and ${problems.length - 10} more`);
}

export interface EvaluationRequest {
  readonly net: Network;
  readonly tail: readonly TailLayer[];
  /** Read at every evaluation: the arrays training updates in place. */
  readonly params: FrontParams;
  readonly tailParams: TailParams;
  readonly names?: string;
  readonly onBadSample: OnBadSample;
  readonly log: (line: string) => void;
}

/**
 * `--valid LIST`: a function that evaluates the current weights on the list, on this device (the
 * head): mAP at IoU 0.5 for a [region] tail, top-1 accuracy for a softmax tail. One image per
 * forward pass, with the event loop's timers run in between, so heartbeats to the peers still go
 * out on a loaded machine.
 */
export async function openEvaluation(list: string, request: EvaluationRequest): Promise<() => Promise<Evaluation[]>> {
  const { evaluateClassifier, evaluateDetector } = await import('../eval/evaluate.js');
  const kind = tailTruthKind(request.tail);
  if (kind === null) throw new Error(`--valid ${list}: the model has no tail with a loss to evaluate`);
  const model = { net: request.net, params: request.params, tail: request.tail, tailParams: request.tailParams };
  if (kind === 'boxes') {
    const set = openDetectionList(list, { classes: tailClasses(frontOutput(request.net), request.tail), onBadSample: request.onBadSample });
    reportSkipped(set.report.skipped, set.report.problems, request.log);
    return async () => [{ name: 'mAP@0.5', value: (await evaluateDetector(model, set, { batch: 1 })).map }];
  }
  if (!request.names) throw new Error(`--valid ${list}: a classification list needs --names FILE`);
  const set = openClassificationList(list, readNames(request.names), { onBadSample: request.onBadSample });
  reportSkipped(set.report.skipped, set.report.problems, request.log);
  return async () => [{ name: 'accuracy', value: await evaluateClassifier(model, set, { batch: 1 }) }];
}
