// Reading the files of a data set (images, lists, labels, names) with errors that name the file.
import { readFileSync } from 'node:fs';
import { DataError } from './data-error.js';

/** Reads a file of a data set; `what` says which kind in the error ("image", "label file", ...). */
export function readDataFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(file, undefined, `${what} not found`);
    if (code === 'EISDIR') throw new DataError(file, undefined, `${what} is a directory`);
    throw new DataError(file, undefined, `cannot read ${what} (${code ?? (error as Error).message})`);
  }
}
