export { run, start, compile, preparePolicy, resolveWorkspace, type PolicyInput, type RunOptions } from './api.js';
export { loadPolicy, loadPolicyObject, type EffectivePolicy, type LoadedPolicy } from './policy/load.js';
export { PolicySchema, type PolicyFile } from './policy/schema.js';
export { PROFILES, PROFILE_NAMES } from './policy/profiles/index.js';
export { compilePlan, type Plan } from './plan/compile.js';
export type { Denial, LaunchRecord, RunHandle, RunResult, RunReason, LaunchOptions } from './sandbox/launch.js';
export { WardError, PolicyError, EXIT_WARD_ERROR, EXIT_TIMEOUT, EXIT_LIMIT_KILLED } from './errors.js';
export { WARD_VERSION } from './version.js';
