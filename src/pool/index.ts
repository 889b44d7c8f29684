/** Pre-warmed sandboxes (issue #6): see pool.ts. */
export { createPool, type Pool, type PoolStats } from './pool.js';
export { MAX_POOL_SIZE, type PoolOptions, type PoolRunOptions } from './options.js';
