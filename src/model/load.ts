// Resolve `--model`: a Darknet .cfg path, or the name of a built-in preset.
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { type ParsedCfg, parseCfg } from './cfg.js';
import { PRESETS, presetCfg } from './presets.js';

export function loadModel(spec: string): ParsedCfg {
  if (spec in PRESETS) return presetCfg(spec);
  if (existsSync(spec)) return parseCfg(readFileSync(spec, 'utf8'), spec, basename(spec).replace(/\.cfg$/, ''));
  throw new Error(`--model "${spec}" is neither a file nor a preset (presets: ${Object.keys(PRESETS).join(', ')})`);
}
