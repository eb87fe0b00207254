// `--profile NAME|FILE` and `--workers N`: the device profile the planner predicts with.
import { existsSync, readFileSync } from 'node:fs';
import { builtinProfile, builtinProfileNames } from '../grouping/builtin-profiles.js';
import { type DeviceProfile, ProfileError, parseProfileText, withWorkers } from '../grouping/profile.js';
import { UsageError } from './usage-error.js';

export const DEFAULT_PROFILE = 'this-machine';

/** A built-in profile by name, else a JSON file; `workers` overrides the profile's worker count. */
export function loadProfileOption(spec: string | undefined, workers?: number): DeviceProfile {
  const name = spec ?? DEFAULT_PROFILE;
  try {
    let profile: DeviceProfile;
    if (builtinProfileNames().includes(name)) profile = builtinProfile(name);
    else if (existsSync(name)) profile = parseProfileText(readFileSync(name, 'utf8'), name);
    else throw new UsageError(`--profile "${name}" is neither a built-in profile (${builtinProfileNames().join(', ')}) nor a file`);
    return workers === undefined ? profile : withWorkers(profile, workers);
  } catch (error) {
    if (error instanceof ProfileError) throw new UsageError(error.message);
    throw error;
  }
}
