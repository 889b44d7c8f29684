/**
 * createPool()'s options, checked before anything starts: an unknown key or a bad size is a
 * caller's mistake, named with its fix, never silently ignored.
 */
import type { Writable } from 'node:stream';
import { WardError } from '../errors.js';
import type { PolicyInput } from '../api.js';
import type { AuditOption } from '../audit/run-log.js';
import type { LaunchOptions, VerificationSummary } from '../sandbox/launch.js';
import type { Plan } from '../plan/compile.js';

/** More warm sandboxes than this would mostly hold memory on the small machines Ward targets. */
export const MAX_POOL_SIZE = 32;

export interface PoolOptions {
  /** The one policy every sandbox of the pool is built from (default: as run() without a policy). */
  policy?: PolicyInput;
  /** How many sandboxes are kept warm (1 to 32). */
  size: number;
  /** The workspace directory (default: the current directory). */
  workspace?: string;
  /** The environment the policy reads (`env.pass`, ~) (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where each command is recorded, as in run() (default: the user's audit log; false: not recorded). */
  audit?: AuditOption;
  /** Run with a missing layer if the policy's sandbox.allow_degraded also allows it. */
  allowDegraded?: boolean;
  /** A `ward verify` result for this policy, recorded in each launch record (as in run()). */
  verification?: VerificationSummary;
  /** For tests, as LaunchOptions.egress: where allowed names really go (default: the host's resolver). */
  egress?: LaunchOptions['egress'];
}

const KNOWN = ['policy', 'size', 'workspace', 'env', 'audit', 'allowDegraded', 'verification', 'egress'] as const;

export function checkPoolOptions(opts: unknown): PoolOptions {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new WardError('createPool needs an options object', { step: 'pool', fix: 'createPool({ policy: { profile: "default" }, size: 2 })' });
  }
  for (const key of Object.keys(opts)) {
    if (!(KNOWN as readonly string[]).includes(key)) {
      throw new WardError(`createPool: unknown option '${key}'`, { step: 'pool', fix: `use only ${KNOWN.join(', ')}` });
    }
  }
  const size = (opts as { size?: unknown }).size;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > MAX_POOL_SIZE) {
    throw new WardError(`createPool: size must be an integer from 1 to ${MAX_POOL_SIZE}, got ${JSON.stringify(size)}`, {
      step: 'pool',
      fix: 'size is how many sandboxes are kept warm: 1 or 2 hide the start of one command at a time',
    });
  }
  return opts as PoolOptions;
}

/**
 * What a pool cannot do yet, by the policy's features; null if it can run the plan. Refused,
 * never run with less: each named feature is either in force in a pooled sandbox or refused.
 */
export function unpoolable(plan: Plan): { feature: string; why: string } | null {
  // Dynamic rules are pooled: each warm sandbox has its own supervisor and fresh rule state, set
  // up (with the notify filter installed) before "ready", exactly as an unpooled run without a
  // session. Sessions are refused at hand-out options (there is no `session` option).
  // network.allow is pooled: each warm sandbox has its own broker, relay and run directory, up
  // before "ready" (bwrap waits for the relay). Brokered credentials are not: their values would
  // be read when the sandbox is built and kept in Ward's memory for the warm time, and a
  // credential rotated meanwhile would go out stale.
  if (plan.network && plan.network.secrets.length > 0) {
    return {
      feature: 'brokered credentials (`secrets:`)',
      why: 'a warm sandbox would read their values when it is built, not when its command runs; pooling them is not built yet',
    };
  }
  return null;
}

export interface PoolRunOptions {
  /** 'ignore' (default): the command reads EOF. 'pipe' (start() only): write to handle.stdin. */
  stdin?: 'pipe' | 'ignore';
  /** 'capture' (default): result.stdout/stderr. Or forward to your streams. */
  output?: 'capture' | { stdout: Writable; stderr: Writable };
  signal?: AbortSignal;
}

const KNOWN_RUN = ['stdin', 'output', 'signal'] as const;

export function checkRunOptions(opts: unknown, forRun: boolean): PoolRunOptions {
  if (opts === undefined) return {};
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw new WardError('pool.run: options must be an object', { step: 'pool' });
  for (const key of Object.keys(opts)) {
    if (!(KNOWN_RUN as readonly string[]).includes(key)) {
      throw new WardError(`pool.${forRun ? 'run' : 'start'}: unknown option '${key}'`, {
        step: 'pool',
        fix: `use only ${KNOWN_RUN.join(', ')}; the policy, workspace and limits are the pool's (createPool)`,
      });
    }
  }
  const o = opts as PoolRunOptions;
  if (o.stdin !== undefined && o.stdin !== 'pipe' && o.stdin !== 'ignore') {
    throw new WardError(`pool: stdin must be 'pipe' or 'ignore', got ${JSON.stringify(o.stdin)}`, { step: 'pool', fix: "a warm sandbox's stdin is a pipe from Ward: it cannot inherit Ward's terminal" });
  }
  if (forRun && o.stdin === 'pipe') throw new WardError("pool.run: stdin 'pipe' needs the handle to write to", { step: 'pool', fix: "use pool.start(argv, { stdin: 'pipe' })" });
  if (o.output !== undefined && o.output !== 'capture' && (typeof o.output !== 'object' || !o.output.stdout || !o.output.stderr)) {
    throw new WardError(`pool: output must be 'capture' or { stdout, stderr } streams`, { step: 'pool', fix: "a warm sandbox's output is a pipe to Ward: 'inherit' is not possible; forward to process.stdout/process.stderr instead" });
  }
  return o;
}
