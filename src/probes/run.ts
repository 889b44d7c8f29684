/**
 * The probe runner: each probe in its own fresh sandbox, built from the policy
 * under test (plus the probe's overlay, if any), with a fresh workspace, a fake
 * $HOME full of planted credentials, and a caller environment full of secret
 * variables, all holding one random canary and all removed afterwards.
 *
 *   1. load the policy once: against the user's workspace for the hash the report
 *      names (what `ward policy show` prints there), and against a reference
 *      workspace like the probes'; an invalid policy stops here (exit 125);
 *   2. preflight: run `true` in that sandbox, so a host that cannot build it
 *      (no user namespaces, no cgroup without --allow-degraded) is reported
 *      once, with the fix, rather than as seventy errors;
 *   3. run the probes, two at a time (this is I/O- and startup-bound work);
 *   4. a probe whose output contains the canary is broken, whatever its check said.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { preparePolicy, run, type PolicyInput, type RunOptions } from '../api.js';
import { WardError } from '../errors.js';
import { wardStatePaths } from '../policy/secrets.js';
import type { RunRecord } from '../sandbox/launch.js';
import { WARD_VERSION } from '../version.js';
import { makeFixture, SECRET_ENV_NAMES } from './fixtures.js';
import { selectProbes } from './suite.js';
import { broken, error, skipped } from './lib.js';
import type { PolicyOverlay, Probe, ProbeContext, ProbeProgram, ProbeReport, ProbeResult, ProbeRun, Verdict } from './types.js';

export interface RunProbesOptions {
  /** The policy under test: a file, a profile, or a policy object (default: the `default` profile). */
  policy: PolicyInput;
  /** Where the per-probe directories are made (default: the system temp directory). */
  workspaceBase?: string;
  /**
   * The workspace the report's policy hash is computed for (default: the current
   * directory), so it is the hash `ward policy show` prints there. Probes never
   * run in it: each gets its own fresh one, whose hash is in its own result.
   */
  workspace?: string;
  /** Group names and probe ids to run (default: all). */
  only?: string[];
  /** Let runs drop a layer the host lacks (the policy must allow it too), as `ward run --allow-degraded`. */
  allowDegraded?: boolean;
  /** Probes at once (default 2). */
  concurrency?: number;
  /** Called as each probe finishes (progress). */
  onResult?: (result: ProbeResult) => void;
  /**
   * Where every probe's run is recorded (launch, denials, exit): a log file or an
   * open AuditWriter, as `run()` takes it. Default false: the library does not
   * write to the user's log unless asked (`ward probe` asks).
   */
  audit?: RunOptions['audit'];
  /** Every run record of every probe's sandbox, as it is recorded. */
  onRecord?: (probeId: string, record: RunRecord) => void;
  /** The probes to choose from (default: the whole suite); tests use it. */
  probes?: readonly Probe[];
}

/** A probe that has not finished by then is killed and reported as an error. */
const PROBE_TIMEOUT_MS = 60_000;

export async function runProbes(opts: RunProbesOptions): Promise<ProbeReport> {
  const started = new Date();
  const selected = selectProbes(opts.only, opts.probes);
  const allowDegraded = opts.allowDegraded === true;
  const baseDir = realpathSync(opts.workspaceBase ?? os.tmpdir());
  const root = mkdtempSync(path.join(baseDir, 'ward-probe-'));
  const canary = `wardcanary${randomBytes(12).toString('hex')}`;

  try {
    // 1 + 2: the policy as the suite sees it, and one sandbox proving the host can build it.
    const refWs = path.join(root, 'reference', 'ws');
    const refHome = path.join(root, 'reference', 'home');
    mkdirSync(refWs, { recursive: true });
    mkdirSync(refHome, { recursive: true });
    const refEnv = probeEnv(refHome, canary);
    const input = withOverlay(opts.policy, undefined);
    const loaded = preparePolicy(input, { workspace: refWs, env: refEnv });
    const reported = reportedPolicy(input, opts.workspace) ?? loaded;
    const audit = opts.audit ?? false;
    const pre = await run(loaded, ['true'], { workspace: refWs, env: refEnv, stdin: 'ignore', allowDegraded, audit });
    if (pre.exitCode !== 0) {
      throw new WardError(`the sandbox could not run \`true\` under this policy (exit ${pre.exitCode}): ${pre.stderr.toString().trim().split('\n').at(-1) ?? ''}`, {
        fix: 'check that the policy grants the system directories (extends: [minimal] or [default])',
      });
    }

    // 3
    const results: ProbeResult[] = new Array<ProbeResult>(selected.length);
    let next = 0;
    const worker = async () => {
      while (next < selected.length) {
        const i = next++;
        results[i] = await runOne(selected[i]!, i, { root, canary, policy: opts.policy, allowDegraded, audit, onRecord: opts.onRecord });
        opts.onResult?.(results[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 2, selected.length)) }, worker));

    const summary = { held: 0, broken: 0, error: 0, skipped: 0 };
    for (const r of results) summary[r.status]++;
    const cg = pre.launch.layers.cgroup;
    return {
      ward_version: WARD_VERSION,
      policy_sha256: reported.sha256,
      policy_canonical: reported.canonical,
      policy_sources: reported.sources,
      audit_log: auditLogPath(audit),
      started: started.toISOString(),
      finished: new Date().toISOString(),
      host: {
        kernel: os.release(),
        uid: process.getuid?.() ?? -1,
        arch: process.arch,
        landlock_abi: pre.launch.observed?.landlock.abi ?? null,
        cgroup: cg ? (cg.version === 2 ? 'v2' : 'v1') : pre.launch.degraded.some((d) => d.startsWith('cgroup')) ? 'none' : 'unknown',
      },
      allow_degraded: allowDegraded,
      summary,
      probes: results,
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function auditLogPath(audit: RunOptions['audit']): string | null {
  return typeof audit === 'string' ? path.resolve(audit) : audit === false ? null : audit && 'path' in audit ? String(audit.path) : null;
}

interface Shared {
  root: string;
  canary: string;
  policy: PolicyInput;
  allowDegraded: boolean;
  audit: RunOptions['audit'];
  onRecord: RunProbesOptions['onRecord'];
}

async function runOne(probe: Probe, index: number, shared: Shared): Promise<ProbeResult> {
  const t0 = Date.now();
  const fx = makeFixture(shared.root, index, probe.id, shared.canary);
  const uid = process.getuid?.() ?? -1;
  const ctx: ProbeContext = {
    id: probe.id,
    ws: fx.ws,
    home: fx.home,
    outside: fx.outside,
    canary: shared.canary,
    runnerPid: process.pid,
    node: process.execPath,
    isRoot: uid === 0,
    uid,
    wardDirs: wardStatePaths(process.env, os.homedir()),
    auditLog: auditLogPath(shared.audit),
    state: {},
  };
  let verdict: Verdict | undefined;
  let outcome: ProbeRun | undefined;
  let policySha: string | null = null;
  let setupDone = false;
  const recorded: RunRecord['type'][] = [];
  try {
    const why = probe.requires?.(ctx) ?? null;
    if (why !== null) verdict = skipped(why);
    if (!verdict) {
      try {
        await probe.setup?.(ctx);
        setupDone = true;
      } catch (e) {
        verdict = error(`host-side setup failed: ${(e as Error).message}`);
      }
    }
    if (!verdict) {
      const program = typeof probe.program === 'function' ? probe.program(ctx) : probe.program;
      const overlay = typeof probe.policy === 'function' ? probe.policy(ctx) : probe.policy;
      const timeout = AbortSignal.timeout(PROBE_TIMEOUT_MS);
      try {
        const r = await run(withOverlay(shared.policy, overlay), argvOf(program, ctx), {
          workspace: fx.ws,
          env: probeEnv(fx.home, shared.canary),
          stdin: 'ignore',
          allowDegraded: shared.allowDegraded,
          signal: timeout,
          audit: shared.audit,
          onRecord: (rec) => {
            recorded.push(rec.type);
            shared.onRecord?.(probe.id, rec);
          },
        });
        policySha = r.launch.policy_sha256;
        outcome = {
          exitCode: r.exitCode,
          reason: r.reason,
          message: r.message,
          stdout: r.stdout.toString('utf8'),
          stderr: r.stderr.toString('utf8'),
          denials: r.denials,
          net: r.net,
          revocations: r.revocations,
          launch: r.launch,
          durationMs: r.durationMs,
        };
        try {
          verdict = probe.check(outcome, ctx);
        } catch (e) {
          verdict = error(`the check failed: ${(e as Error).message}`);
        }
        if (timeout.aborted && verdict.status !== 'broken') verdict = error(`did not finish within ${PROBE_TIMEOUT_MS / 1000}s and was killed`);
        // Ward's observations must reach the log: the launch, every denial it saw, the exit.
        const denialsRecorded = recorded.filter((t) => t === 'denial').length;
        if (shared.audit !== false && verdict.status === 'held' && (!recorded.includes('launch') || !recorded.includes('exit') || denialsRecorded !== r.denials.length)) {
          verdict = error(`held, but the run's records did not all reach the audit log (${recorded.join(', ') || 'none'}; ${r.denials.length} denial(s) observed)`);
        }
        if (verdict.status !== 'broken' && (outcome.stdout.includes(shared.canary) || outcome.stderr.includes(shared.canary))) {
          verdict = broken(`a planted secret (the canary) is in the probe's output; the check said: ${verdict.detail}`);
        }
      } catch (e) {
        const refusal = outcome === undefined && e instanceof WardError ? (probe.refused?.(e, ctx) ?? null) : null;
        // A refusal that holds was decided on this policy, which loaded: its hash names it as a launch's would.
        if (refusal) policySha = refusedPolicySha(withOverlay(shared.policy, overlay), fx.ws, probeEnv(fx.home, shared.canary));
        verdict = refusal ?? error(`the sandbox could not run the probe: ${(e as Error).message}${e instanceof WardError && e.fix ? ` (fix: ${e.fix})` : ''}`);
      }
    }
  } finally {
    if (setupDone) {
      try {
        await probe.teardown?.(ctx);
      } catch {
        /* best effort: the fixture directory goes below anyway */
      }
    }
    rmSync(fx.dir, { recursive: true, force: true });
  }
  return {
    id: probe.id,
    group: probe.group,
    promise: probe.promise,
    mechanism: probe.mechanism,
    asi: [...probe.asi],
    nist: [...probe.nist],
    status: verdict.status,
    detail: verdict.detail,
    title: probe.title,
    expect: probe.expect,
    exit_code: outcome?.exitCode ?? null,
    ...(outcome ? { reason: outcome.reason } : {}),
    denials: outcome?.denials ?? [],
    policy_sha256: policySha,
    degraded: outcome?.launch.degraded ?? [],
    audit_records: shared.audit === false ? 0 : recorded.length,
    duration_ms: Date.now() - t0,
  };
}

function refusedPolicySha(input: PolicyInput, workspace: string, env: NodeJS.ProcessEnv): string | null {
  try {
    return preparePolicy(input, { workspace, env }).sha256;
  } catch {
    return null; // refused while loading: there is no effective policy to name
  }
}

/** The policy as it applies in the user's workspace (null if that directory is unusable: the reference one stands in). */
function reportedPolicy(input: PolicyInput, workspace: string | undefined): ReturnType<typeof preparePolicy> | null {
  try {
    return preparePolicy(input, { workspace: workspace ?? process.cwd(), env: process.env });
  } catch (e) {
    if (workspace !== undefined) throw e;
    return null;
  }
}

function argvOf(program: ProbeProgram, ctx: ProbeContext): string[] {
  if ('argv' in program) return program.argv;
  if ('sh' in program) return ['sh', '-c', program.sh];
  if ('python' in program) return ['python3', '-c', program.python];
  return [ctx.node, '-e', program.node];
}

/**
 * The caller's environment as a probe's sandbox is given it: the real one, with
 * $HOME pointing at the fake home (so `~` in the policy means it), Ward's XDG
 * directories defaulting under it, and secret variables whose values hold the
 * canary. Only what the policy's env.pass names can enter the sandbox.
 */
export function probeEnv(home: string, canary: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env.XDG_STATE_HOME;
  delete env.XDG_CONFIG_HOME;
  delete env.XDG_CACHE_HOME;
  for (const name of SECRET_ENV_NAMES) env[name] = `${canary}-env-${name}`;
  return env;
}

/**
 * The policy under test with a probe's overlay merged last, the way `extends`
 * merges: path lists and env.pass are unions, resources and sandbox settings
 * override, env.set merges by name.
 */
export function withOverlay(input: PolicyInput, overlay: PolicyOverlay | undefined): PolicyInput {
  if (input !== undefined && 'effective' in input) {
    throw new WardError('the probe suite needs the policy itself (a file, a profile or an object), not a loaded policy', {
      fix: 'pass { file }, { profile } or { policy }: each probe loads it against its own fresh workspace',
    });
  }
  if (!overlay) return input ?? { profile: 'default' };
  const base: Record<string, unknown> =
    input === undefined ? { extends: ['default'] } : 'profile' in input ? { extends: [input.profile] } : 'file' in input ? { extends: [path.resolve(input.file)] } : { ...(input.policy as Record<string, unknown>) };
  const merged: Record<string, unknown> = { ...base };
  const obj = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
  if (overlay.filesystem) {
    const fsBase = obj(base.filesystem);
    const out: Record<string, unknown> = { ...fsBase };
    for (const [k, list] of Object.entries(overlay.filesystem)) out[k] = [...((fsBase[k] as unknown[] | undefined) ?? []), ...(list as unknown[])];
    merged.filesystem = out;
  }
  if (overlay.resources) merged.resources = { ...obj(base.resources), ...overlay.resources };
  if (overlay.sandbox) merged.sandbox = { ...obj(base.sandbox), ...overlay.sandbox };
  if (overlay.secrets) merged.secrets = { ...obj(base.secrets), ...overlay.secrets };
  if (overlay.network) {
    const netBase = obj(base.network);
    const out: Record<string, unknown> = { ...netBase };
    for (const [k, list] of Object.entries(overlay.network)) out[k] = [...((netBase[k] as unknown[] | undefined) ?? []), ...(list as unknown[])];
    merged.network = out;
  }
  // Rules are a union, as extends merges them: a probe's rule is added to the policy's own.
  if (overlay.rules) merged.rules = [...((base.rules as unknown[] | undefined) ?? []), ...overlay.rules];
  if (overlay.env) {
    const envBase = obj(base.env);
    merged.env = {
      ...envBase,
      ...(overlay.env.pass ? { pass: [...((envBase.pass as string[] | undefined) ?? []), ...overlay.env.pass] } : {}),
      ...(overlay.env.set ? { set: { ...obj(envBase.set), ...overlay.env.set } } : {}),
    };
  }
  return { policy: merged };
}
