/** Bad command-line input: reported without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function parsePositiveInt(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`${flag} must be a positive integer, got "${text}"`);
  return Number(text);
}

export function parseNonNegativeInt(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} must be a non-negative integer, got "${text}"`);
  return Number(text);
}

/** on|off (also true|false, yes|no, 1|0). */
export function parseSwitch(flag: string, text: string): boolean {
  const value = text.trim().toLowerCase();
  if (['on', 'true', 'yes', '1'].includes(value)) return true;
  if (['off', 'false', 'no', '0'].includes(value)) return false;
  throw new UsageError(`${flag} must be on or off, got "${text}"`);
}

export function parseSize(flag: string, text: string): { height: number; width: number } {
  const match = /^(\d+)(?:x(\d+))?$/i.exec(text.trim());
  if (!match) throw new UsageError(`${flag} must look like HxW or N (for example 160x160), got "${text}"`);
  const height = Number(match[1]);
  const width = Number(match[2] ?? match[1]);
  if (height < 1 || width < 1) throw new UsageError(`${flag} must be positive, got "${text}"`);
  return { height, width };
}

/** Runs `fn`, turning any plain Error into a UsageError (for argument and plan validation). */
export function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError((error as Error).message);
  }
}
