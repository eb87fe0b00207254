// Backend names and the choice report, apart from tfjs itself: threads that only schedule (the
// main thread with compute workers) parse --backend without loading tfjs.

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendChoice {
  readonly name: BackendName;
  /** Why a preferred backend was skipped, when one was. */
  readonly notes: readonly string[];
}

export function parseBackend(text: string): BackendName {
  if (!(BACKENDS as readonly string[]).includes(text)) throw new Error(`backend must be one of ${BACKENDS.join('|')}, got "${text}"`);
  return text as BackendName;
}
