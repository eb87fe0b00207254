// Darknet list files (one image path a line) and names files (one class name a line).
// Relative paths in a list are taken relative to the list file's directory (Darknet takes them
// relative to the working directory), so a data set can be moved or referenced from anywhere.
import { dirname, isAbsolute, join } from 'node:path';
import { DataError } from './data-error.js';
import { readDataFile } from './read-data-file.js';

export interface ListEntry {
  /** The path as written in the list. */
  readonly written: string;
  /** The path to open: absolute, or joined onto the list file's directory. */
  readonly path: string;
  readonly line: number;
}

export function readList(listFile: string): ListEntry[] {
  const dir = dirname(listFile);
  const entries: ListEntry[] = [];
  linesOf(listFile, 'list file').forEach(({ text, line }) => {
    entries.push({ written: text, path: isAbsolute(text) ? text : join(dir, text), line });
  });
  if (entries.length === 0) throw new DataError(listFile, undefined, 'list file names no images');
  return entries;
}

/** Class names in order (index = class id); blank lines are ignored, duplicates refused. */
export function readNames(namesFile: string): string[] {
  const names: string[] = [];
  for (const { text, line } of linesOf(namesFile, 'names file')) {
    if (names.includes(text)) throw new DataError(namesFile, line, `class name "${text}" appears twice`);
    names.push(text);
  }
  if (names.length === 0) throw new DataError(namesFile, undefined, 'names file names no classes');
  return names;
}

/** Non-blank lines, trimmed, with their 1-based line numbers. */
export function linesOf(file: string, what: string): { text: string; line: number }[] {
  return readDataFile(file, what)
    .toString('utf8')
    .split(/\r?\n/)
    .map((raw, index) => ({ text: raw.trim(), line: index + 1 }))
    .filter(({ text }) => text !== '');
}
