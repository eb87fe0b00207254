// Checkpoints: Darknet .weights plus the optimizer's momentum buffers and the step counter. Every file
// is written to a temporary name, fsynced and renamed, and `latest.json` is switched last, so a crash
// or a full disk never leaves a truncated checkpoint as the latest one.
// With a tail, the head (rank 0) writes the whole network: front then tail weights (a full Darknet
// file) and front then tail momentum. The other ranks hold no tail: they write the front's weights
// (a Darknet file of the front's layers) and momentum, which is all their own --resume needs.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Network } from '../model/layers.js';
import type { TailLayer } from '../model/tail-layers.js';
import { type FrontParams, type TailParams, decodeWeights, encodeWeights } from '../model/weights.js';
import { concatFloats, splitFloats } from './float-parts.js';
import { type OptimizerState, stateBuffers } from './optimizer.js';

export interface CheckpointMeta {
  /** Steps completed: training resumes at this step. */
  readonly step: number;
  readonly planHash: string;
  readonly weightsFile: string;
  readonly stateFile: string;
}

/** Write to a temporary name, fsync, rename: readers see the old file or the whole new one. */
export function writeAtomically(path: string, bytes: Uint8Array, what = 'checkpoint file'): void {
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(temporary, 'w');
    try {
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new Error(`could not write ${what} ${path}: ${(error as Error).message}`);
  }
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Optimizer buffers in stateBuffers' order (front, then tail), little-endian floats. */
function encodeState(states: readonly OptimizerState[]): Uint8Array {
  return new Uint8Array(concatFloats(states.flatMap(stateBuffers)).buffer);
}

function decodeState(bytes: Uint8Array, into: readonly OptimizerState[], file: string): void {
  const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  splitFloats(floats, into.flatMap(stateBuffers), `${file} does not fit this model's optimizer state`);
}

/** The head's tail: its layers, parameters and momentum. */
export interface TailCheckpoint {
  readonly layers: readonly TailLayer[];
  readonly params: TailParams;
  readonly state: OptimizerState;
}

export function saveCheckpoint(
  dir: string, net: Network, params: FrontParams, state: OptimizerState, step: number, planHash: string, batch: number, tail?: TailCheckpoint,
): CheckpointMeta {
  mkdirSync(dir, { recursive: true });
  const meta: CheckpointMeta = { step, planHash, weightsFile: `step-${step}.weights`, stateFile: `step-${step}.state` };
  writeAtomically(join(dir, meta.weightsFile), encodeWeights(net, params, step * batch, tail));
  writeAtomically(join(dir, meta.stateFile), encodeState(tail ? [state, tail.state] : [state]));
  syncDirectory(dir);
  const previous = readLatest(dir);
  writeAtomically(join(dir, 'latest.json'), new TextEncoder().encode(JSON.stringify(meta)));
  syncDirectory(dir);
  // Keep the previous checkpoint as well: one older good copy costs little.
  if (previous && previous.step !== step) {
    const older = readOlder(dir);
    if (older && older.step !== previous.step) {
      rmSync(join(dir, older.weightsFile), { force: true });
      rmSync(join(dir, older.stateFile), { force: true });
    }
    writeAtomically(join(dir, 'previous.json'), new TextEncoder().encode(JSON.stringify(previous)));
  }
  return meta;
}

function readJson(path: string): CheckpointMeta | null {
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, 'utf8')) as CheckpointMeta;
}

export const readLatest = (dir: string): CheckpointMeta | null => readJson(join(dir, 'latest.json'));
const readOlder = (dir: string): CheckpointMeta | null => readJson(join(dir, 'previous.json'));

/**
 * Loads the latest checkpoint: returns its metadata and weights and fills `state` (and the tail's,
 * on the head), or returns null when there is none. The head passes `tail`: its files must then
 * hold exactly the front and the tail.
 */
export function loadCheckpoint(
  dir: string, net: Network, state: OptimizerState, planHash: string, tail?: Pick<TailCheckpoint, 'layers' | 'state'>,
): { meta: CheckpointMeta; params: FrontParams; tailParams?: TailParams } | null {
  const meta = readLatest(dir);
  if (!meta) return null;
  if (meta.planHash !== planHash) {
    throw new Error(`checkpoint ${join(dir, 'latest.json')} was written for plan ${meta.planHash}, this run's plan is ${planHash}: resume with the same model and plan flags`);
  }
  const weightsPath = join(dir, meta.weightsFile);
  const { params, tailParams } = decodeWeights(net, new Uint8Array(readFileSync(weightsPath)), weightsPath, tail?.layers);
  const statePath = join(dir, meta.stateFile);
  decodeState(new Uint8Array(readFileSync(statePath)), tail ? [state, tail.state] : [state], statePath);
  return tailParams ? { meta, params, tailParams } : { meta, params };
}
