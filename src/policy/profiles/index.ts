import type { PolicyFile } from '../schema.js';
import { defaultProfile } from './default.js';
import { minimal } from './minimal.js';
import { node } from './node.js';
import { python } from './python.js';

/** The built-in profiles, by the name a policy's `extends` or `--profile` uses. */
export const PROFILES: Readonly<Record<string, PolicyFile>> = {
  minimal,
  node,
  python,
  default: defaultProfile,
};

export const PROFILE_NAMES = Object.keys(PROFILES);
