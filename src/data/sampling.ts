// Deterministic sampling: every epoch's order, the train/validation split and augmentation draws
// are functions of a seed, so every device and every resumed run sees the same samples.
import { seededRandom } from '../model/weights.js';

/** Combines a seed with stream numbers (epoch, sample, purpose) into one 32-bit seed. */
export function mixSeeds(seed: number, ...streams: number[]): number {
  let h = Math.imul(seed >>> 0, 0x9e3779b1) >>> 0;
  for (const s of streams) {
    h = Math.imul(h ^ (s >>> 0), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  return Math.imul(h ^ (h >>> 16), 0xc2b2ae35) >>> 0;
}

// Stream numbers keep the draws for different purposes independent under one seed.
const ORDER_STREAM = 1;
const SPLIT_STREAM = 2;

/** A permutation of 0..n-1 (Fisher-Yates) drawn from `random`. */
export function permutation(n: number, random: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** The order of the n samples in epoch `epoch`: a permutation fixed by (seed, epoch). */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  return permutation(n, seededRandom(mixSeeds(seed, ORDER_STREAM, epoch)));
}

/**
 * Splits sample indices 0..n-1 into train and validation: round(n * validFraction) samples,
 * drawn by seed, go to validation. Both lists come back in ascending order.
 */
export function splitTrainValid(n: number, validFraction: number, seed: number): { train: number[]; valid: number[] } {
  if (!(validFraction >= 0 && validFraction <= 1)) throw new RangeError(`validation fraction must be in 0..1, got ${validFraction}`);
  const order = permutation(n, seededRandom(mixSeeds(seed, SPLIT_STREAM)));
  const validCount = Math.round(n * validFraction);
  const ascending = (a: number, b: number) => a - b;
  return { train: order.slice(validCount).sort(ascending), valid: order.slice(0, validCount).sort(ascending) };
}

/**
 * Cuts an order into batches of `size`. A last, incomplete batch is dropped: the training plan
 * has a fixed batch size. Its samples come first in some later epoch's order.
 */
export function batchesOf<T>(order: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`batch size must be a positive integer, got ${size}`);
  const batches: T[][] = [];
  for (let start = 0; start + size <= order.length; start += size) batches.push(order.slice(start, start + size));
  return batches;
}
