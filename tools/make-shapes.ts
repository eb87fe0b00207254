// Writes the synthetic "shapes" detection set (src/data/shapes.ts). Defaults regenerate the
// committed data/shapes: `npm run shapes`. Other sets: --out DIR --seed N --train N --valid N --size N.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_SHAPES, type ShapesOptions, writeShapesSet } from '../src/data/shapes.js';
import { toolArgs } from './lib/tool-args.js';

function wholeNumber(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new Error(`--${flag} must be a whole number, got "${text}"`);
  return Number(text);
}

try {
  const values = toolArgs('make-shapes', 'Writes the synthetic "shapes" detection set; without options it regenerates the committed data/shapes.', { out: { type: 'string' }, seed: { type: 'string' }, train: { type: 'string' }, valid: { type: 'string' }, size: { type: 'string' } });
  const options: ShapesOptions = {
    seed: wholeNumber('seed', values.seed, DEFAULT_SHAPES.seed),
    train: wholeNumber('train', values.train, DEFAULT_SHAPES.train),
    valid: wholeNumber('valid', values.valid, DEFAULT_SHAPES.valid),
    size: wholeNumber('size', values.size, DEFAULT_SHAPES.size),
  };
  const out = values.out ?? 'data/shapes';
  const written = writeShapesSet(out, options);
  const bytes = written.reduce((sum, file) => sum + statSync(join(out, file)).size, 0);
  console.log(`wrote ${options.train} train + ${options.valid} valid images of ${options.size}x${options.size} (seed ${options.seed}) to ${out}: ${written.length} files, ${(bytes / 1024).toFixed(0)} KiB`);
} catch (error) {
  console.error(`make-shapes: ${(error as Error).message}`);
  process.exit(2);
}
