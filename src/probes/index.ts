/**
 * The escape probe suite (`ward probe`): the probes (suite.ts, one file per group
 * under groups/), the runner (run.ts) and the types the report writer consumes.
 */
export { ALL_PROBES, selectProbes } from './suite.js';
export { runProbes, probeEnv, withOverlay, type RunProbesOptions } from './run.js';
export * from './types.js';
