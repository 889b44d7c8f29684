/**
 * The library API. The CLI is a thin layer over these functions:
 *
 *   const r = await run({ profile: 'default' }, ['npm', 'test'], { workspace });
 *   r.exitCode; r.stdout; r.denials; r.launch.policy_sha256
 *
 * policy -> compiled plan -> enforcement -> result, each step a plain function.
 */
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { WardError } from './errors.js';
import { loadPolicy, loadPolicyObject, type LoadedPolicy } from './policy/load.js';
import type { PolicyFile } from './policy/schema.js';
import { compilePlan, type Plan } from './plan/compile.js';
import { kernelTreeProblem } from './plan/mounts.js';
import { homeDir } from './paths.js';
import type { LaunchOptions, RunHandle, RunResult } from './sandbox/launch.js';
import { launchAudited, openAudit, type AuditOption } from './audit/run-log.js';

/** A policy: a file, a built-in profile, a policy object, or an already loaded policy. */
export type PolicyInput = { file: string } | { profile: string } | { policy: PolicyFile | Record<string, unknown> } | LoadedPolicy | undefined;

export interface RunOptions extends LaunchOptions {
  /** The workspace directory (default: the current directory). */
  workspace?: string;
  /** The environment `env.pass` takes names from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * Where the run is recorded: a log file, an AuditWriter (src/audit/writer.ts),
   * or false (not recorded by Ward: for embedders that keep their own record
   * through onRecord, and for tests). Default: the user's tamper-evident log,
   * $XDG_STATE_HOME/ward/audit.jsonl (XDG_STATE_HOME and HOME taken from `env`),
   * signed with the key in $XDG_CONFIG_HOME/ward, created on first use.
   */
  audit?: AuditOption;
}

export function resolveWorkspace(dir: string | undefined): string {
  const ws = path.resolve(dir ?? process.cwd());
  let real: string;
  try {
    real = realpathSync(ws);
  } catch {
    throw new WardError(`workspace ${ws} does not exist`, { fix: 'create the directory, or pass --workspace DIR with an existing one' });
  }
  if (!statSync(real).isDirectory()) throw new WardError(`workspace ${ws} is not a directory`, { fix: 'pass --workspace DIR with a directory' });
  // The workspace is usually granted (the default profile binds it writable): one that holds
  // the host's /proc, /dev or /sys would put them in the sandbox in place of its own.
  const p = kernelTreeProblem(real);
  if (p && !p.inside) {
    throw new WardError(`workspace ${ws}${real !== ws ? ` (${real})` : ''} contains ${p.what}: granting it would put the host's kernel interfaces (processes, sysctls, devices) into the sandbox in place of its own`, {
      fix: 'pass --workspace with the project directory (or run from it); grant other directories the command needs in the policy (e.g. /usr, /etc, /opt)',
    });
  }
  return real;
}

export function preparePolicy(input: PolicyInput, options: { workspace?: string; env?: NodeJS.ProcessEnv } = {}): LoadedPolicy {
  if (input && 'effective' in input) return input;
  const env = options.env ?? process.env;
  const workspace = resolveWorkspace(options.workspace);
  const home = homeDir(env);
  if (input === undefined) return loadPolicy({ workspace, home, env });
  if ('file' in input) return loadPolicy({ file: input.file, workspace, home, env });
  if ('profile' in input) return loadPolicy({ profile: input.profile, workspace, home, env });
  return loadPolicyObject(input.policy, { workspace, home, env });
}

export function compile(input: PolicyInput, options: { workspace?: string; env?: NodeJS.ProcessEnv } = {}): Plan {
  const policy = preparePolicy(input, options);
  const env = options.env ?? process.env;
  return compilePlan(policy, { home: homeDir(env), env });
}

/** Starts CMD in a sandbox and returns at once: streams, kill(), and the result promise. */
export function start(input: PolicyInput, argv: string[], options: RunOptions = {}): RunHandle {
  const audit = openAudit(options.audit, options.env ?? process.env);
  return launchAudited(audit, argv, () => compile(input, options), () => options);
}

/** Runs CMD in a sandbox built from the policy and resolves when it has ended. */
export async function run(input: PolicyInput, argv: string[], options: RunOptions = {}): Promise<RunResult> {
  return start(input, argv, options).result;
}
