// What the plan allows on the wire: the validator every received strip and reduce chunk must pass,
// the weight-gradient bucket names and sizes, and the plan hash devices compare in the handshake.
import { createHash } from 'node:crypto';
import type { StripFields, ReduceFields } from '../peers/codec.js';
import type { MessageValidator } from '../peers/peer-node.js';
import { type TilePlan, clusterSize, headTile, stripEndpoints, stripPart, weightBucketLength } from '../tiles/plan.js';
import { formatRegion, regionHeight, regionWidth } from '../tiles/region.js';

export const weightBucket = (step: number, layer: number): string => `${step}/dW/${layer}`;
export const lossBucket = (step: number): string => `${step}/loss`;
export const checksumBucket = (step: number): string => `${step}/checksum`;
/** Data-parallel replicas sum the tail's gradients too (every replica runs the tail). */
export const tailBucket = (step: number): string => `${step}/tail`;
/** Floats per device in a checksum reduction (16-bit pieces of the hash). */
export const CHECKSUM_PIECES = 3;

/** A hash of everything that must be equal on every device for their steps to fit together. */
export function planHash(plan: TilePlan): string {
  const canonical = JSON.stringify({
    net: { input: plan.net.input, layers: plan.net.layers },
    // Only when there is one, so front-only plans keep their hashes (and their checkpoints).
    ...(plan.tail.length > 0 ? { tail: plan.tail } : {}),
    grid: plan.grid,
    devices: plan.devices,
    batch: plan.batch,
    forward: plan.forwardGroups,
    backward: plan.backwardGroups,
    tileDevice: plan.tileDevice,
    // Only when replicated, so other plans keep their hashes (and their checkpoints).
    ...(plan.replicas > 1 ? { replicas: plan.replicas } : {}),
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** `tailFloats`: the tail's parameter count, for the tail bucket of data-parallel replicas. */
export function planValidator(plan: TilePlan, tailFloats = 0): MessageValidator {
  const endpoints = stripEndpoints(plan);
  const valid = plan.tail.length > 0 ? `tiles 0..${plan.tiles - 1} and the head ${headTile(plan)}` : `tiles 0..${plan.tiles - 1}`;
  return {
    strip(s: StripFields, floats: number, sender: number, me: number): string | null {
      if (!Number.isInteger(s.from) || s.from < 0 || s.from >= endpoints.length) return `strip from tile ${s.from}, the plan has ${valid}`;
      if (!Number.isInteger(s.to) || s.to < 0 || s.to >= endpoints.length) return `strip to tile ${s.to}, the plan has ${valid}`;
      if (endpoints[s.from] !== sender) return `rank ${sender} sent a strip from tile ${s.from}, which lives on rank ${endpoints[s.from]}`;
      if (endpoints[s.to] !== me) return `strip to tile ${s.to}, which lives on rank ${endpoints[s.to]}`;
      let part;
      try {
        part = stripPart(plan, s.phase, s.group, s.from, s.to);
      } catch (error) {
        return (error as Error).message;
      }
      const band = s.region;
      const whole = part.region;
      if (band.cols.start !== whole.cols.start || band.cols.end !== whole.cols.end || band.rows.start < whole.rows.start || band.rows.end > whole.rows.end || band.rows.end <= band.rows.start) {
        return `strip ${s.phase} ${s.group} ${s.from}>${s.to} region ${formatRegion(band)} is not a row band of ${formatRegion(whole)}`;
      }
      const expected = plan.batch * regionHeight(band) * regionWidth(band) * plan.maps[part.map]!.channels;
      if (floats !== expected) return `strip ${s.phase} ${s.group} ${s.from}>${s.to} carries ${floats} floats, its region needs ${expected}`;
      return null;
    },
    reduce(r: ReduceFields, floats: number): string | null {
      let length: number | null;
      const match = /^(\d+)\/(dW\/(\d+)|loss|checksum|tail)$/.exec(r.bucket);
      if (!match) return `unknown reduction bucket "${r.bucket.slice(0, 40)}"`;
      if (match[2] === 'loss') length = 1;
      else if (match[2] === 'checksum') length = clusterSize(plan) * CHECKSUM_PIECES;
      else if (match[2] === 'tail') length = plan.replicas > 1 && tailFloats > 0 ? tailFloats : null;
      else length = weightBucketLength(plan, Number(match[3]));
      if (length === null) return match[2] === 'tail' ? 'a tail reduction, but this plan has no replicated tail' : `reduction bucket "${r.bucket}" names a layer without weights`;
      if (r.offset + floats > length || floats === 0) return `reduce chunk [${r.offset}, ${r.offset + floats}) outside bucket "${r.bucket}" of ${length} floats`;
      return null;
    },
  };
}
