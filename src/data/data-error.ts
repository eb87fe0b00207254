// Problems with a data set: a missing or corrupt image, a bad label line, an unknown class.
// Messages read `file:line: message` (labels, lists) or `file: message` (images) so an editor can jump there.

export class DataError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    problem: string,
  ) {
    super(line === undefined ? `${file}: ${problem}` : `${file}:${line}: ${problem}`);
    this.name = 'DataError';
  }
}

/** What to do with a sample that has a problem: report and leave it out, or stop at the first one. */
export type OnBadSample = 'skip' | 'fail';

/** Problems found while opening a data set in `skip` mode, one message per skipped sample. */
export interface DataReport {
  readonly skipped: number;
  readonly problems: readonly string[];
}

/**
 * Collects bad samples: in `fail` mode the first DataError propagates; in `skip` mode it is
 * recorded and the sample is left out. Any other error is a bug and propagates in both modes.
 */
export class BadSamples {
  private readonly messages: string[] = [];

  constructor(private readonly mode: OnBadSample) {}

  /** Runs `check` for one sample; returns its result, or undefined when the sample is skipped. */
  check<T>(check: () => T): T | undefined {
    try {
      return check();
    } catch (error) {
      if (this.mode === 'fail' || !(error instanceof DataError)) throw error;
      this.messages.push(error.message);
      return undefined;
    }
  }

  report(): DataReport {
    return { skipped: this.messages.length, problems: [...this.messages] };
  }
}
