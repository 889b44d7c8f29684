/**
 * Plan + argv -> a running sandbox -> a result. The launch path, top to bottom:
 *
 *   1. cgroup: create the run's cgroup with its limits (or refuse, or, when the
 *      caller and the policy both allow it, degrade to rlimits and record it);
 *   2. spawn `ward-launch outer` (joins the cgroup, then execs bwrap), with
 *      fd 3 = bwrap's arguments, fd 4 = the launchers' status channel,
 *      fd 5 = the seccomp program;
 *   3. bwrap builds namespaces and mounts, loads seccomp, runs `ward-launch
 *      inner`, which sets rlimits and Landlock, reports what is in force as seen
 *      from inside, closes every other fd, and execs the command;
 *   4. Ward enforces the wall clock and CPU time, watches the cgroup for kills,
 *      waits, removes the cgroup, and says which limit stopped the command.
 *
 * With network.allow, Ward also starts the egress broker (src/net/broker.ts) on a
 * unix socket in a private run directory, and the launcher's relay joins the
 * sandbox's network namespace and carries connections and DNS queries to it
 * (bwrap waits on --block-fd until the relay listens). The broker's decisions
 * become `net` records, between the launch record and the exit record. The run
 * directory is under Ward's state directory (a mandatory deny), and the relay
 * proves itself to the broker with a key it reads from fd 11 (never argv or the
 * environment): a pathname socket ignores the network namespace, so both must
 * hold for the sandbox not to speak to a broker itself.
 *
 * fd 4 is a socketpair end (Node's 'pipe'), not a pipe: bwrap's pid 1 keeps a
 * copy, and a socket cannot be reopened through /proc/1/fd the way a pipe can,
 * so the command cannot write forged status lines into it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { RELAY_KEY_LEN, startBroker, type Broker, type BrokeredSecret, type NetEvent } from '../net/broker.js';
import { createRunCa } from '../net/ca.js';
import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { EXIT_LIMIT_KILLED, EXIT_TIMEOUT, EXIT_WARD_ERROR, WardError } from '../errors.js';
import { ensureLauncher, innerArgs, landlockAbi, outerArgs, parseLauncherStatus, type InnerReport, type LauncherStatus } from '../launcher/launcher.js';
import type { Plan, Rlimits } from '../plan/compile.js';
import { policyRules } from '../plan/rules.js';
import { canonicalJson } from '../policy/canonical.js';
import { isAllowed, matchEvent, revokes, type Event } from '../rules/index.js';
import { ensureMaskFile } from '../paths.js';
import { writableInSandbox } from '../plan/visible.js';
import { hostBinaryProblem } from '../hostbin.js';
import { confinementProblem, sandboxConfinement } from './confinement.js';
import { bwrapArgs, bwrapCommand, encodeArgs, hostMountPointsMissing, LAUNCHER_INSIDE, NAMESPACE_FLAGS } from './bwrap.js';
import { createCgroup, needsCgroup, type Cgroup } from './cgroup.js';
import { loopGrace } from '../loop-grace.js';
import { makeRunDir, runDirParent } from './run-dir.js';
import { diagnoseBwrapFailure, findBwrap } from './preflight.js';
import { WARD_VERSION } from '../version.js';
import { rulesDeciderModule, startSupervisor, validateSupervise, type NotifyFilter, type SuperviseOptions, type Supervisor, type SupervisorDenial } from '../supervisor/index.js';
import { supervisedModeProblem, type SupervisedHost } from '../supervisor/preflight.js';
import { grantedRights } from '../supervisor/static.js';
import { entryFileIds, MAX_ALIAS_WALK, ruleFileAliases, runnableVisibleFiles, type Aliases } from '../supervisor/rules-aliases.js';
import { killWriters, sandboxPidUnder } from '../supervisor/cut.js';
import { loadNative } from '../supervisor/native.js';
import { applyShared, firedIn, loadRuleState, newSharedRuleState, revocationReport, revokedBy, revokesWriting, writeRevoked, type RevocationReport } from '../supervisor/rules-state.js';
import { joinSession, saveSession, watchSession } from '../supervisor/session.js';
import { encodeArgvMessage } from '../pool/message.js';
import { sandboxStdio } from './stdio.js';

const RESOLV_CONF = '/etc/resolv.conf';
const SYSTEM_CA = '/etc/ssl/certs/ca-certificates.crt';

/** How long a launch whose process has exited may still take to deliver its status report. */
const STATUS_GRACE_MS = 200;

/** The longest delay setTimeout takes as given. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** After a kill by wall_time or the abort signal: how long output already made may still reach the caller. */
const OUTPUT_GRACE_MS = 1000;

const FD_ARGS = 3;
const FD_STATUS = 4;
const FD_SECCOMP = 5;
/** Ward's end of the watchdog's lifeline (see ward-launch.c): closed, or Ward dead, means kill the sandbox. */
const FD_LIFELINE = 6;
/** Created by the launcher, not by us: the pipe from bwrap's --info-fd to the watchdog. */
const FD_INFO = 7;
/** Created by the launcher too: bwrap's --block-fd, written by the relay once it listens. */
const FD_BLOCK = 8;
/** Supervised mode: the socket the inner launcher passes its seccomp listener over (src/supervisor/). */
const FD_SUPERVISE = 9;
/** Pooled (warm) sandboxes only: the channel inner reads the command's argv from (src/pool/). */
const FD_ARGV = 10;
/** With network.allow: the relay's key for the broker, read and closed by outer before it forks. */
const FD_RELAY_KEY = 11;
/** Refusals recorded one by one per run; beyond this they are counted in one closing record. */
const MAX_SUPERVISOR_RECORDS = 1000;

/** Default cap on captured output when the policy sets none (the library buffers it). */
export const DEFAULT_CAPTURE_BYTES = 16 * 1024 * 1024;

export type OutputMode = 'inherit' | 'capture' | { stdout: Writable; stderr: Writable };

export interface LaunchOptions {
  /**
   * 'inherit' (the default; the CLI's): Ward's stdin, passed when it is a pipe, a socket or a
   * terminal, relayed through a pipe when it is anyone's file (src/sandbox/stdio.ts); 'ignore':
   * EOF; 'pipe': the handle's stdin.
   */
  stdin?: 'inherit' | 'pipe' | 'ignore';
  /**
   * 'capture' buffers (the library default), an object forwards; both honour resources.output.
   * 'inherit' passes or relays Ward's fds 1 and 2 as stdin 'inherit' does fd 0.
   */
  output?: OutputMode;
  /** Run with a missing layer if the policy's sandbox.allow_degraded also allows it. */
  allowDegraded?: boolean;
  signal?: AbortSignal;
  /**
   * Receives the run's records in order, as they become known: the launch record,
   * then one `denial` record per refusal Ward observed, then the `exit` record.
   * This is the one way out of the launch path for events (the audit log subscribes).
   */
  onRecord?: (record: RunRecord) => void;
  /**
   * A `ward verify` result for this policy (src/verify/properties): recorded in the launch
   * record, after checking that it is about exactly the policy and plan that run.
   */
  verification?: VerificationSummary;
  /** Egress broker settings for tests: where allowed names really go (default: the host's resolver). */
  egress?: { resolve?: (host: string) => Promise<string>; upstreamCa?: string[] };
  /**
   * Supervised mode with a decision module of the caller's (internal: tests and benchmarks; a
   * policy's `rules:` are supervised by launch() itself, see plan.rules): the listed syscalls are decided
   * at run time by `decider`, in Ward's supervisor thread (src/supervisor/). Each refusal becomes
   * a `denial` record (layer 'supervisor'). If the supervisor cannot start or dies, the sandbox
   * is killed: a supervised command never runs unguarded.
   */
  supervise?: SuperviseOptions;
  /**
   * For tests: the host facts supervised mode's preflight reads (default: this host's). It can
   * only add a refusal: a host that cannot run supervised mode fails the launch later anyway.
   */
  supervisedHost?: SupervisedHost;
  /**
   * An agent session (src/supervisor/session.ts): the dynamic rules' state starts from what the
   * session's earlier commands did and what this one does is added to it. Needs `rules:`.
   */
  session?: string;
  /** Where Ward's state is (sessions): XDG_STATE_HOME and HOME are read from it (default: process.env). */
  env?: NodeJS.ProcessEnv;
}

/** What the launch record keeps of a verification: enough to re-check it, and no more. */
export interface VerificationSummary {
  policy_sha256: string;
  plan_sha256: string | null;
  ok: boolean;
  properties: { id: string; status: string; counterexample?: string }[];
  ms: number;
}

export type RunRecord =
  | LaunchRecord
  | NetEvent
  | ({ type: 'denial' } & Denial)
  | RevocationRecord
  | { type: 'exit'; exit_code: number; raw_exit_code: number; reason: RunReason; message: string | null; output_truncated: boolean; duration_ms: number };

/** A dynamic rule fired: from now on, what it revokes is refused (src/supervisor/rules-state.ts). */
export type RevocationRecord = { type: 'revocation' } & Omit<RevocationReport, 'kind'>;

/** Something the boundary refused or stopped, as Ward observed it. */
export interface Denial {
  layer: 'cgroup' | 'rlimit' | 'timeout' | 'seccomp' | 'landlock' | 'output' | 'supervisor' | 'network';
  what: string;
  verdict: 'killed' | 'refused' | 'truncated';
  detail: string;
}

export interface LaunchRecord {
  type: 'launch';
  ward_version: string;
  time: string;
  policy_sha256: string;
  plan_sha256: string;
  policy_sources: string[];
  argv: string[];
  workspace: string;
  cwd: string;
  layers: {
    namespaces: string[];
    seccomp: { sha256: string; instructions: number };
    cgroup: { version: 1 | 2; applied: string[] } | null;
    rlimits: Rlimits;
    /** The sandbox user namespace's /proc/sys/user limits, set before the command started. */
    userns_limits?: Record<string, number>;
    landlock_mode: string;
    /** The egress path in force: null means an empty network namespace and nothing else. */
    network: { allow: string[]; allow_local: number[]; relay_ports: number[]; secrets: { name: string; hosts: string[]; source: string }[] } | null;
    /** Supervised mode: the syscalls decided at run time and the notify filter's size (absent: not supervised). */
    supervisor?: { syscalls: string[]; notified: string[]; instructions: number; caps_dropped: boolean; sync_wake_up: boolean; wait_killable: boolean };
    /** The dynamic rules in force (policy text), each enforced until the sandbox ends. */
    rules?: string[];
  };
  /** What the launcher saw from inside, right before exec (null if it never reported). */
  observed: InnerReport | null;
  degraded: string[];
  notes: string[];
  /** The `ward verify` result for this very policy and plan, when the run asked for one. */
  verification?: VerificationSummary;
  /** The agent session this command joined, and the rules (by index) that had fired in it before. */
  session?: { name: string; fired_before: number[] };
  /** Ran in a pooled sandbox (src/pool/): built before the command was known, warm for this long. */
  pooled?: { warm_ms: number };
}

export type RunReason = 'exit' | 'signal' | 'timeout' | 'memory' | 'cpu_time' | 'file_size' | 'exec-failed';

export interface RunResult {
  exitCode: number;
  /** The command's own exit status, before Ward mapped a limit kill to 137/124. */
  rawExitCode: number;
  reason: RunReason;
  /** Human sentence when a limit stopped the command. */
  message: string | null;
  stdout: Buffer;
  stderr: Buffer;
  outputTruncated: boolean;
  /**
   * The caller's fds (1, 2) that stopped taking relayed output and were given up on when the
   * run's time was up (a denial says so too); a write of Ward's to them may still be pending.
   */
  outputCut: (1 | 2)[];
  denials: Denial[];
  /** Every egress decision of the run (DNS queries, connections), in order. */
  net: NetEvent[];
  /** The dynamic rules that fired, in order, with what triggered them. */
  revocations: RevocationRecord[];
  launch: LaunchRecord;
  durationMs: number;
  /**
   * Supervised mode: the notifications the supervisor answered, and how many of them it decided
   * blind (allowed from registers alone, src/supervisor/worker.ts).
   */
  supervisor?: { notifications: number; blind: number };
}

export interface RunHandle {
  pid: number;
  stdin: Writable | null;
  result: Promise<RunResult>;
  /** Kill the whole sandbox now. */
  kill(): void;
}

const { SIGXCPU, SIGXFSZ } = osConstants.signals;
/**
 * An exit status of 128+SIGXCPU or 137 is the command's word: `exit 152` gives the same status
 * through bwrap as a death by SIGXCPU. A cpu_time kill is recorded only when the cgroup's CPU
 * accounting, which the command cannot forge, shows the limit reached: Ward's watchdog saw it,
 * or the command died of SIGXCPU or SIGKILL with the cgroup's CPU time at the limit (RLIMIT_CPU's
 * backstop, set well above cpu_time, fires only when the watchdog was late).
 */
const CPU_NEAR_LIMIT = 0.95;

export function launch(plan: Plan, argv: string[], opts: LaunchOptions = {}): RunHandle {
  if (argv.length === 0) throw new WardError('no command given', { fix: 'ward run [options] -- COMMAND [ARGS...]' });
  return launchSandbox(plan, argv, opts).handle;
}

/** What a pooled command chooses at hand-out; everything else was fixed when the sandbox was built. */
export interface HandOutOptions {
  /** 'pipe': the handle's stdin writes to the command; 'ignore' (default): it reads EOF. */
  stdin?: 'pipe' | 'ignore';
  /** 'capture' (default) or forwarded streams; both honour resources.output. */
  output?: 'capture' | { stdout: Writable; stderr: Writable };
  signal?: AbortSignal;
}

/**
 * A sandbox built in full before its command is known (src/pool/): every layer in force, the
 * inner launcher blocked on its argv channel. It runs exactly one command (handOut), or none.
 */
export interface WarmSandbox {
  pid: number;
  /** Resolves when the inner launcher reported "ready"; rejects with the launch's error if it ended first. */
  ready: Promise<void>;
  /** Resolves when the sandbox has ended and is cleaned up (used or not, whatever the outcome). */
  ended: Promise<void>;
  /** False once the sandbox has ended or been handed out: such a sandbox must not be handed out. */
  usable(): boolean;
  /** Sends the command; limits and the wall clock start now. Throws if the sandbox is not usable. */
  handOut(argv: string[], opts?: HandOutOptions): RunHandle;
  /** Kills the sandbox (unused, or running its command); resolves once it is gone and cleaned up. */
  discard(): Promise<void>;
}

/**
 * Builds a sandbox for `plan` with no command yet (inner --argv-fd): see WarmSandbox.
 * `opts` are the sandbox's (records, degraded mode, verification); stdio and the abort signal
 * are the command's, given at hand-out. Sessions are refused: a session's rule state is read
 * when the sandbox starts, and would be stale by the time the command runs.
 */
export function launchWarm(plan: Plan, opts: Omit<LaunchOptions, 'stdin' | 'output' | 'signal'> = {}): WarmSandbox {
  if (opts.session !== undefined) {
    throw new WardError('a pooled sandbox cannot join an agent session: the session\'s rule state is read when the sandbox starts, before the command is known', { step: 'pool', fix: 'run session commands with run()/start(), not from a pool' });
  }
  return launchSandbox(plan, null, opts).warm!;
}

function launchSandbox(plan: Plan, argvIn: string[] | null, opts: LaunchOptions): { handle: RunHandle; warm: WarmSandbox | null } {
  // argvIn null: a warm sandbox (launchWarm); the command, the clock and stdio come at hand-out.
  const isWarm = argvIn === null;
  let argv: string[] = argvIn ?? [];
  let started = process.hrtime.bigint();
  const warmSince = started;
  let handedAt: bigint | null = null;
  const eff = plan.policy.effective;
  // Dynamic rules run supervised or not at all. A plan whose rules are not exactly the
  // policy's (built by hand, edited after compilation, or resolved through a symlink that has
  // changed since) is refused: it would enforce less.
  const dyn = plan.rules;
  if (canonicalJson(dyn) !== canonicalJson(policyRules(plan.policy))) {
    throw new WardError('the plan\'s dynamic rules are not the policy\'s as they resolve now (a plan must be compiled from its policy, and a symlink on the way of a rule\'s pattern must not change between compiling and running)', { step: 'supervise', fix: 'compile the plan with compile()/compilePlan() from the policy that runs, just before running it' });
  }
  if (dyn && opts.supervise) {
    throw new WardError('this policy has dynamic rules, which Ward supervises itself; a caller\'s own supervise option cannot be combined with them', { step: 'supervise' });
  }
  if (dyn) {
    const p = supervisedModeProblem(opts.supervisedHost);
    if (p) {
      const what = dyn.rules.length > 0 ? ['dynamic rules (`rules:`)', 'the rules'] : ['append-only or visible-only files (`filesystem.append`, `filesystem.visible`)', 'them'];
      throw new WardError(`the policy has ${what[0]}, which only supervised mode enforces, and supervised mode cannot run here: ${p.problem}; refusing to run ${what[1]} unenforced`, { step: 'supervise', fix: p.fix });
    }
  }
  // The rules' state, shared by the supervisor thread and the egress broker (rules-state.ts).
  const ruleCells = dyn ? new Int32Array(newSharedRuleState(dyn.rules)) : null;
  if (opts.session !== undefined && (!dyn || dyn.rules.length === 0)) {
    throw new WardError('--session needs a policy with dynamic rules (`rules:`): a session carries their state from one command to the next', {
      step: 'session',
      fix: 'add `rules:` to the policy, or run without --session',
    });
  }
  // Before the supervisor or the broker decides anything: this command starts where its session is.
  const session = dyn && opts.session !== undefined ? joinSession(opts.session, opts.env ?? process.env, dyn.rules, ruleCells!) : null;
  let sessionError: unknown = null;
  const saveToSession = () => {
    if (!session) return;
    try {
      saveSession(session, dyn!.rules, ruleCells!);
    } catch (e) {
      sessionError ??= e;
    }
  };
  let aliases: Aliases = [];
  if (dyn && dyn.syscalls.length > 0) {
    const found = ruleFileAliases(dyn.rules);
    if ('tooMany' in found) {
      throw new WardError(`the rule pattern ${found.tooMany} covers more than ${MAX_ALIAS_WALK} files; Ward must know each file a rule names (a hard link or a rename would otherwise hide it from the rule)`, {
        step: 'supervise',
        fix: 'narrow the pattern to the files the rule is about (e.g. ${WORKSPACE}/secrets/** rather than ${WORKSPACE}/**)',
      });
    }
    aliases = found.aliases;
  }
  // The files inside directory entries of append/visible, by identity (rules-aliases.ts entryFileIds).
  const entryIds = (entries: string[] | undefined, key: 'append' | 'visible'): string[] | undefined => {
    if (!entries || entries.length === 0) return undefined;
    const ids = entryFileIds(entries);
    if (ids === null) {
      throw new WardError(`the ${key} entries ${entries.join(', ')} hold more than ${MAX_ALIAS_WALK} files; Ward must know each by identity (a hard link made before the run would otherwise reach it by another name)`, {
        step: 'supervise',
        fix: `narrow filesystem.${key} to the files or directories it is about`,
      });
    }
    return ids;
  };
  const appendIds = entryIds(dyn?.append, 'append');
  const visibleIds = entryIds(dyn?.visible, 'visible');
  const supervise: SuperviseOptions | undefined =
    opts.supervise ??
    (dyn && dyn.syscalls.length > 0 ? { syscalls: dyn.syscalls, ...(dyn.conditions ? { conditions: dyn.conditions } : {}), ...(dyn.append ? { append: dyn.append, appendIds } : {}), ...(dyn.visible ? { visible: dyn.visible, visibleIds } : {}), decider: { module: rulesDeciderModule(), data: { rules: dyn.rules, cells: ruleCells!.buffer, aliases } } } : undefined);
  const degraded: string[] = [];
  const degradeAllowed = opts.allowDegraded === true && eff.sandbox.allow_degraded;
  if (opts.allowDegraded && !eff.sandbox.allow_degraded) {
    throw new WardError('--allow-degraded was given, but the policy does not allow degraded runs', {
      step: 'preflight',
      fix: 'set `sandbox: { allow_degraded: true }` in the policy if running with fewer layers is acceptable, or drop --allow-degraded',
    });
  }

  const v = opts.verification;
  if (v && (v.policy_sha256 !== plan.policy.sha256 || v.plan_sha256 !== plan.sha256)) {
    throw new WardError(
      `the verification given is about another policy or plan (verified policy ${v.policy_sha256.slice(0, 12)}, plan ${String(v.plan_sha256).slice(0, 12)}; running policy ${plan.policy.sha256.slice(0, 12)}, plan ${plan.sha256.slice(0, 12)})`,
      { step: 'verify', fix: 'verify the policy with the same workspace and environment as the run (ward run --verify does both at once)' },
    );
  }

  let notifyFilter: NotifyFilter | null = null;
  if (supervise) {
    try {
      notifyFilter = validateSupervise(supervise);
    } catch (e) {
      throw new WardError((e as Error).message, { step: 'supervise' });
    }
  }

  // Both run on the host, as the caller: nothing this sandbox could write may change them.
  const sandboxWritable = (p: string) => writableInSandbox(plan.mounts.ops, p);
  const bwrap = findBwrap(opts.env ?? process.env, sandboxWritable);
  const launcher = ensureLauncher();
  const launcherProblem = hostBinaryProblem(launcher, sandboxWritable);
  if (launcherProblem !== null) {
    throw new WardError(`refusing to run Ward's launcher ${launcher} on the host: ${launcherProblem}`, {
      step: 'preflight:launcher',
      fix: 'install Ward outside every writable grant of the policy (not in the workspace\'s node_modules), or deny its directory in the policy',
    });
  }
  const maskFile = ensureMaskFile();

  const childEnv: Record<string, string> = { ...plan.env };
  // Brokered credentials: values read now, outside (before anything is created that would need
  // undoing if one is missing); the sandbox gets placeholders only.
  const brokered: BrokeredSecret[] = (plan.network?.secrets ?? []).map((sec) => ({
    name: sec.name,
    placeholder: `ward-secret-${sec.name}-${randomBytes(12).toString('hex')}`,
    value: sec.read(),
    hosts: sec.hosts,
    header: sec.header,
  }));
  for (const sec of brokered) childEnv[sec.name] = sec.placeholder;

  // Before anything is created: a mount point Ward adds must not have to be made on the host.
  const missing = hostMountPointsMissing(plan.mounts.ops, [LAUNCHER_INSIDE, ...(plan.network ? [RESOLV_CONF] : []), ...(brokered.length > 0 ? [SYSTEM_CA] : [])]);
  if (missing.length > 0) {
    const m = missing[0]!;
    throw new WardError(`Ward mounts its own ${m.dest} in the sandbox, but it lies inside the granted host directory ${m.bind}, where it does not exist as a file: bwrap would have to create it on the host`, {
      step: 'preflight',
      fix: `grant narrower paths than ${m.bind}, or create ${m.dest} on the host`,
    });
  }
  const runParent = plan.network ? runDirParent(plan, opts.env ?? process.env) : null;

  // 1. cgroup
  const rlimits: Rlimits = { ...plan.rlimits };
  let cgroup: Cgroup | null = null;
  // cpu_time needs the cgroup as much as memory and pids do: RLIMIT_CPU alone is per process,
  // so a tree of children each under the limit could use any multiple of it.
  if (needsCgroup(plan.cgroup) || plan.cpuTimeSec !== null) {
    try {
      cgroup = createCgroup(plan.cgroup, { cpuAccounting: plan.cpuTimeSec !== null });
      if (plan.cpuTimeSec !== null && cgroup.cpuSeconds() === null) {
        void cgroup.remove();
        cgroup = null;
        throw new WardError('cannot apply the policy\'s cpu_time over the whole process tree: the cgroup Ward made does not account CPU time (no cpuacct controller)', {
          step: 'cgroup',
          fix: 'mount the cpuacct controller (cgroup v1) or use cgroup v2; or set resources.cpu_time to "unlimited"; or pass --allow-degraded (if the policy allows it) to fall back to RLIMIT_CPU per process',
        });
      }
    } catch (e) {
      if (!degradeAllowed) throw e;
      // The kernel never applies RLIMIT_NPROC to global uid 0 (copy_process exempts INIT_USER), and
      // a root caller's sandbox runs as host uid 0: nothing would stand in for pids at all.
      if (plan.cgroup.pids !== null && process.getuid?.() === 0) {
        throw new WardError(`cannot apply the policy's pids limit (${plan.cgroup.pids}) without a cgroup, even degraded: Ward runs as root, and the kernel never applies RLIMIT_NPROC (the per-process stand-in) to uid 0, so nothing would limit the number of processes (${(e as Error).message})`, {
          step: 'cgroup',
          fix: 'make the pids controller usable (mount it writable: cgroup v1 /sys/fs/cgroup/pids, or v2 with pids enabled); or run Ward as an unprivileged user, where RLIMIT_NPROC stands in; or set resources.pids to "unlimited"',
        });
      }
      degraded.push(`cgroup: ${(e as Error).message}`);
      // Weaker stand-ins, per process rather than per tree: recorded as such. RLIMIT_AS is not one:
      // it bounds address space, not memory, and programs reserve far more than they use (node 20
      // aborts at start under a 256 MiB RLIMIT_AS).
      if (plan.cgroup.memory !== null) {
        rlimits.data = [plan.cgroup.memory, plan.cgroup.memory];
        degraded.push(`memory: RLIMIT_DATA per process only (${plan.cgroup.memory} bytes each): not shared memory, tmpfs or page cache, and not the tree (each process may use as much)`);
      }
      if (plan.cgroup.pids !== null) degraded.push(`pids: RLIMIT_NPROC (${plan.cgroup.pids}) instead of the pids cgroup: it counts the processes and threads of the sandbox's uid in its user namespace (on Linux < 5.14, all of the user's processes on the host), and a refused fork is not recorded`);
      if (plan.cgroup.cpus !== null) degraded.push('cpus: no bandwidth limit without a cgroup');
      if (plan.cpuTimeSec !== null) degraded.push(`cpu_time: RLIMIT_CPU per process only (${rlimits.cpu?.[0] ?? plan.cpuTimeSec}s each): a tree of processes can use more CPU time in total`);
    }
  }
  if (cgroup && plan.cpuTimeSec !== null) {
    // With the cgroup, Ward's watchdog on its CPU accounting stops the tree at cpu_time and is the
    // evidence of it. RLIMIT_CPU stays only as a backstop above that: the kernel checks it against
    // tick-sampled time, which under CPU contention runs ahead of the real time (SIGXCPU came at
    // 0.84-0.94 s of a 1 s limit on a loaded 2-core VM), so at the limit it would fire first and
    // leave a status (152) the command can fake, and no evidence Ward can check.
    const s = Math.ceil(plan.cpuTimeSec * 1.5) + 1;
    rlimits.cpu = [s, s + 1];
  }

  let landlockMode = plan.landlock.mode;
  if (landlockMode === 'required' && degradeAllowed) landlockMode = 'optional';
  if (dyn?.visible && dyn.visible.length > 0) {
    // Landlock is the only layer that restricts execute: when it is not in force, every file can
    // run. 'optional' is in force where this kernel has it (the launcher asks the same kernel).
    let enforced: boolean | null = landlockMode === 'required' ? true : landlockMode === 'off' ? false : null;
    const landlockEnforced = () => (enforced ??= landlockAbi() > 0);
    const executable = (p: string) => !landlockEnforced() || grantedRights(plan.mounts.landlock, p).has('x');
    const runnable = runnableVisibleFiles(dyn.visible, executable);
    if (runnable.length > 0) {
      const first = runnable[0]!;
      const others = runnable.length > 1 ? ` (and ${runnable.length - 1} more: ${runnable.slice(1, 4).map((r) => r.path).join(', ')}${runnable.length > 4 ? ', ...' : ''})` : '';
      throw new WardError(
        `the visible-only file ${first.path} has an execute bit and ${landlockEnforced() ? first.why : `Landlock is not in force (sandbox.landlock ${landlockMode}${landlockMode === 'off' ? '' : ', and this kernel has none'}), so nothing restricts execute`}${others}: a script's #! line or an ELF's interpreter naming it would run it (the kernel opens an interpreter itself, unseen by the supervisor), and its code could be read from the process's memory`,
        { step: 'supervise', fix: `remove its execute bits on the host (chmod a-x ${first.path}), or keep execute from being granted where it is` },
      );
    }
  }

  // 1b. egress: the broker listens before anything can connect (listen() on a path binds at once).
  const netEvents: NetEvent[] = [];
  // Records made while the command runs (net, revocations, supervisor refusals) wait for the
  // launch record, so the log reads in order; after it, they go out as they happen.
  let netLaunched = false;
  let pending: RunRecord[] = [];
  const live = (r: RunRecord) => {
    if (netLaunched) opts.onRecord?.(r);
    else pending.push(r);
  };
  const revocations: RevocationRecord[] = [];
  let launcherPid: number | null = null; // set once the launcher is spawned
  const onRevocation = (rep: RevocationReport) => {
    const { kind: _kind, ...rest } = rep;
    const rec: RevocationRecord = { type: 'revocation', ...rest };
    // A write revocation fired here (by the broker: "after connect untrusted", or by another
    // command of the session) has not had the supervisor's kill of the processes that can still
    // write a revoked file (rules-decider): do it now, before the broker lets the connection that
    // fired it go on (admit() calls this synchronously), so the untrusted bytes find no writer.
    if (dyn && rep.pid === null && launcherPid !== null && revokesWriting(dyn.rules[rep.rule]!)) {
      const inside = sandboxPidUnder(launcherPid);
      if (inside !== null) {
        const killed = killWriters(loadNative(), inside, writeRevoked(loadRuleState(dyn.rules, ruleCells!), new Map(aliases)));
        if (killed.length > 0) rec.killed = killed;
      }
    }
    revocations.push(rec);
    live(rec);
    // At once, not only at the end: a command of the session started meanwhile starts revoked.
    saveToSession();
    // A revoked destination is revoked for connections already open too: the broker cuts them
    // (a connection opened before the secret was read must not carry it out afterwards).
    if (dyn && dyn.rules[rep.rule]!.revoke.some((m) => m.access === 'connect')) {
      void broker?.then((b) => b.cut((host, port) => refusedConnect(host, port))).catch(() => {});
    }
  };
  /** Why a connection to host:port is revoked now, or null if it is not. */
  const refusedConnect = (host: string, port: number): string | null => {
    const target = `${host}:${port}`;
    const state = loadRuleState(dyn!.rules, ruleCells!);
    if (isAllowed(state, 'connect', target)) return null;
    const r = revokedBy(state, (m) => revokes(m, 'connect') && matchEvent(m, { access: 'connect', target }));
    return `revoked by rules[${r ?? '?'}]${r === null ? '' : ` (after ${dyn!.rules[r]!.after.map((m) => `${m.access} ${m.target}`).join(' and ')})`}`;
  };
  /**
   * The broker's side of the dynamic rules: a connection to host:port is refused when a fired
   * rule revoked it, and otherwise is the event "connect host:port" (it may fire rules). The
   * broker is the one place that knows the destination's name (connect is supervised blind).
   */
  const admit = dyn
    ? (host: string, port: number): string | null => {
        const refused = refusedConnect(host, port);
        if (refused !== null) return refused;
        const event: Event = { access: 'connect', target: `${host}:${port}` };
        for (const r of applyShared(dyn.rules, ruleCells!, event)) onRevocation(revocationReport(dyn.rules, r, event, null, 'egress broker'));
        // The connection that completes a rule revoking its own destination (the trifecta's
        // last step) is a way out opened after the rule's other events: refused at once, as
        // every open connection to it is cut.
        const now = refusedConnect(host, port);
        return now === null ? null : `${now}; this connection completed the rule`;
      }
    : undefined;
  let broker: Promise<Broker> | null = null;
  /** The relay's last words ("exit"): it stopped mid-run, and the sandbox's network with it. */
  let relayExit: string | null = null;
  let runDir: string | null = null;
  const relayKey = plan.network ? randomBytes(RELAY_KEY_LEN) : null;
  const files: { src: string; dest: string }[] = [];
  const landlockRules = [...plan.mounts.landlock];
  if (plan.network) {
    try {
      runDir = makeRunDir(runParent!);
    } catch (e) {
      void cgroup?.remove();
      throw new WardError(`cannot make the egress run directory in ${runParent}: ${(e as Error).message}`, { step: 'egress', fix: 'make Ward\'s state directory writable ($XDG_STATE_HOME/ward, default ~/.local/state/ward)' });
    }
    const resolvConf = path.join(runDir, 'resolv.conf');
    writeFileSync(resolvConf, '# Ward: DNS inside the sandbox is answered by Ward, for allowed names only\nnameserver 127.0.0.1\noptions attempts:2 timeout:2\n', { mode: 0o644 });
    files.push({ src: resolvConf, dest: RESOLV_CONF });
    landlockRules.push({ rights: 'r', path: RESOLV_CONF });
    // The run's CA exists only in this process's memory and in this sandbox's trust store.
    const ca = brokered.length > 0 ? createRunCa() : null;
    if (ca) {
      const bundle = path.join(runDir, 'ca-bundle.pem');
      const system = SYSTEM_CA;
      writeFileSync(bundle, `${existsSync(system) ? readFileSync(system, 'utf8').trimEnd() + '\n' : ''}${ca.certPem}`, { mode: 0o644 });
      files.push({ src: bundle, dest: system });
      landlockRules.push({ rights: 'r', path: system });
    }
    const onEvent = (e: NetEvent) => {
      netEvents.push(e);
      live(e);
    };
    broker = startBroker({
      socketPath: path.join(runDir, 'egress.sock'),
      key: relayKey!,
      allow: plan.network.allow,
      allowLocal: plan.network.allowLocal,
      proxyPort: plan.network.proxyPort,
      ...(opts.egress?.resolve ? { resolve: opts.egress.resolve } : {}),
      ...(ca ? { secrets: brokered, tls: { ca, ...(opts.egress?.upstreamCa ? { upstreamCa: opts.egress.upstreamCa } : {}) } } : {}),
      ...(admit ? { admit } : {}),
      onEvent,
      onRelayExit: (why) => (relayExit ??= why),
    });
  }
  const removeRunDir = () => {
    if (runDir) rmSync(runDir, { recursive: true, force: true });
  };

  // 1c. supervised mode: the worker thread that will answer the notify filter's calls. Its
  // refusals become denial records as they happen (after the launch record, like net records).
  const supDenials: Denial[] = [];
  let supDropped = 0;
  let supervisorError: string | null = null;
  let supervisor: Supervisor | null = null;
  if (supervise && notifyFilter) {
    const onDenial = (d: SupervisorDenial) => {
      if (supDenials.length >= MAX_SUPERVISOR_RECORDS) {
        supDropped++;
        return;
      }
      const code = Object.entries(osConstants.errno).find(([, v]) => v === d.errno)?.[0] ?? `errno ${d.errno}`;
      const denial: Denial = {
        layer: 'supervisor',
        what: d.event.path === null ? d.event.syscall : `${d.event.syscall} ${d.event.path}`,
        verdict: 'refused',
        detail: `${d.reason} (${d.event.access}${d.event.create ? ', create' : ''}; answered ${code})`,
      };
      supDenials.push(denial);
      live({ type: 'denial', ...denial });
    };
    try {
      supervisor = startSupervisor(supervise, {
        filter: notifyFilter,
        rules: landlockMode === 'off' ? null : landlockRules,
        onDenial,
        onReport: (data) => {
          if ((data as RevocationReport | null)?.kind === 'revocation') onRevocation(data as RevocationReport);
        },
        onFailure: (message) => {
          supervisorError = message;
          killTree(); // runs from a worker event, always after killTree below is defined
        },
      });
    } catch (e) {
      void cgroup?.remove();
      void broker?.then((b) => b.close()).finally(removeRunDir);
      throw new WardError(`cannot start the supervisor: ${(e as Error).message}`, { step: 'supervise' });
    }
  }

  // 2. spawn
  const confinement = sandboxConfinement(supervisor !== null);
  const inner = innerArgs({
    require: confinement,
    rlimits,
    landlock: { mode: landlockMode, rules: landlockRules, scope: plan.landlock.scope },
    statusFd: FD_STATUS,
    ...(supervisor ? { superviseFd: FD_SUPERVISE } : {}),
    ...(isWarm ? { argvFd: FD_ARGV } : {}),
  });
  // bwrap waits (--block-fd) until the watchdog has bounded the sandbox's user namespace.
  const userns = Object.keys(plan.usernsLimits).length > 0 ? { limits: plan.usernsLimits, blockFd: FD_BLOCK } : null;
  const args = bwrapArgs({
    ops: plan.mounts.ops,
    cwd: plan.mounts.cwd,
    launcherPath: launcher,
    maskFile,
    seccompFd: FD_SECCOMP,
    infoFd: FD_INFO,
    ...(plan.network || userns ? { blockFd: FD_BLOCK } : {}),
    files,
  });
  // A warm sandbox's output is piped; hand-out decides whether it is kept or forwarded.
  const output = isWarm ? 'capture' : (opts.output ?? 'capture');
  const capture = output !== 'inherit';
  if (output === 'inherit' && plan.outputBytes !== null) {
    throw new Error('launch: resources.output needs captured or forwarded output');
  }
  // What is no one's file is passed, the rest relayed (stdio.ts); 'ignore' is a pipe's EOF.
  const stdinMode = isWarm ? 'pipe' : (opts.stdin ?? 'inherit');
  const fds0to2 = sandboxStdio(stdinMode, output === 'inherit' ? 'inherit' : 'pipe');
  const outer = [...outerArgs({ cgroupProcs: cgroup?.procsFiles ?? [], statusFd: FD_STATUS, watchdog: { lifelineFd: FD_LIFELINE, infoFd: FD_INFO }, keepFds: [FD_ARGS, FD_SECCOMP, ...(supervisor ? [FD_SUPERVISE] : []), ...(isWarm ? [FD_ARGV] : [])], ...(plan.network && runDir ? { relay: { socket: path.join(runDir, 'egress.sock'), ports: plan.network.ports, blockFd: FD_BLOCK, keyFd: FD_RELAY_KEY } } : {}), ...(userns ? { userns } : {}) }), bwrap, '--args', String(FD_ARGS), ...bwrapCommand([...inner, ...argv])]; // innerArgs ends with '--'

  let outputCap = plan.outputBytes ?? (output === 'capture' ? DEFAULT_CAPTURE_BYTES : null);

  // Side by side with other commands of the session: their revocations reach this one while it runs.
  const stopWatch = session
    ? watchSession(session, dyn!.rules, ruleCells!, (fired) => {
        for (const r of fired) {
          const m = (x: { access: string; target: string }) => `${x.access} ${x.target}`;
          onRevocation({ kind: 'revocation', rule: r, after: dyn!.rules[r]!.after.map(m), revoked: dyn!.rules[r]!.revoke.map(m), trigger: `session ${session.name}: its events, seen by another command running beside this one`, pid: null, by: 'session' });
        }
      })
    : null;
  let child: ChildProcess;
  try {
    child = spawn(launcher, outer, {
      argv0: 'ward-launch',
      env: childEnv,
      stdio: [
        ...fds0to2.entries,
        'pipe',
        'pipe',
        'pipe',
        'pipe',
        // 7 and 8 are the launcher's own (info and block fds): left unopened here.
        ...(supervisor || isWarm || relayKey ? (['ignore', 'ignore', supervisor ? supervisor.childFd : 'ignore'] as const) : []),
        ...(isWarm || relayKey ? ([isWarm ? 'pipe' : 'ignore'] as const) : []),
        ...(relayKey ? (['pipe'] as const) : []),
      ],
      detached: false,
    });
    launcherPid = child.pid ?? null;
    supervisor?.closeChildFd();
  } catch (e) {
    fds0to2.abandon();
    stopWatch?.();
    supervisor?.closeChildFd();
    void supervisor?.stop();
    void cgroup?.remove();
    void broker?.then((b) => b.close()).finally(removeRunDir);
    throw new WardError(`cannot start the launcher: ${(e as Error).message}`, { step: 'spawn' });
  }
  const stdio = child.stdio as unknown as (Readable & Writable)[];
  if (relayKey) {
    stdio[FD_RELAY_KEY]!.on('error', () => {}); // the launcher died first: reported below
    stdio[FD_RELAY_KEY]!.end(relayKey);
  }
  stdio[FD_ARGS]!.end(encodeArgs(args));
  stdio[FD_SECCOMP]!.end(plan.seccomp.program);
  // Errors on these write ends just mean bwrap already read what it needed, or died (reported below).
  stdio[FD_ARGS]!.on('error', () => {});
  stdio[FD_SECCOMP]!.on('error', () => {});
  // We never write to the lifeline: its closing (here, or by the kernel when Ward dies) is the message.
  const lifeline = stdio[FD_LIFELINE]!;
  lifeline.on('error', () => {});

  const statusChunks: Buffer[] = [];
  stdio[FD_STATUS]!.on('data', (c: Buffer) => statusChunks.push(c));
  stdio[FD_STATUS]!.on('error', () => {});
  const statusDone = new Promise<void>((r) => stdio[FD_STATUS]!.on('close', () => r()));

  // Output, capped.
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let kept = 0;
  let truncated = false;
  const sink = (into: Buffer[], forward: Writable | undefined) => (chunk: Buffer) => {
    if (outputCap !== null && kept + chunk.length > outputCap) {
      const room = Math.max(0, outputCap - kept);
      if (room > 0) {
        const part = chunk.subarray(0, room);
        kept += room;
        if (forward) forward.write(part);
        else into.push(part);
      }
      truncated = true;
      return;
    }
    kept += chunk.length;
    if (forward) forward.write(chunk);
    else into.push(chunk);
  };
  let fwd = typeof output === 'object' ? output : undefined;
  // Through fwd at each chunk, not bound now: a warm sandbox learns where its output goes at hand-out.
  const outSink = sink(out, undefined);
  const errSink = sink(err, undefined);
  if (capture) {
    child.stdout?.on('data', (c: Buffer) => (fwd ? sink(out, fwd.stdout)(c) : outSink(c)));
    child.stderr?.on('data', (c: Buffer) => (fwd ? sink(err, fwd.stderr)(c) : errSink(c)));
  }
  // Relayed output is all written to the caller's fds before the result (and the exit record).
  const relays = fds0to2.start(child);
  const streamsDone = Promise.all([
    ...(capture ? [child.stdout, child.stderr] : []).filter((s): s is Readable => s !== null).map((s) => new Promise<void>((r) => s.on('close', () => r()))),
    relays.done,
  ]);

  // 4. limits Ward enforces from outside
  let timedOut = false;
  let cpuKilled = false;
  const killTree = () => {
    lifeline.destroy(); // the watchdog then kills the sandbox init, even one bwrap has lost track of
    try {
      child.kill('SIGKILL');
    } catch {
      /* gone */
    }
    cgroup?.killAll();
  };
  // Armed at the start of the command: at once, or for a warm sandbox at hand-out.
  let wall: NodeJS.Timeout | null = null;
  let wallDeadline: number | null = null; // performance.now() at which the wall_time ends
  let cpuWatch: NodeJS.Timeout | null = null;
  let abortSignal = opts.signal;
  const onAbort = () => killTree();
  const armLimits = () => {
    if (plan.wallTimeMs !== null) {
      // setTimeout fires at once for more than 2^31-1 ms (~24.8 days): a longer wall_time is
      // waited for in steps, against a monotonic deadline.
      const deadline = performance.now() + plan.wallTimeMs;
      wallDeadline = deadline;
      const step = () => {
        const left = deadline - performance.now();
        wall = left > MAX_TIMER_MS ? setTimeout(step, MAX_TIMER_MS) : setTimeout(() => ((timedOut = true), killTree()), Math.max(0, left));
      };
      step();
    }
    cpuWatch =
      plan.cpuTimeSec !== null && cgroup && cgroup.cpuSeconds() !== null
        ? setInterval(() => {
            const used = cgroup!.cpuSeconds();
            if (used !== null && used >= plan.cpuTimeSec!) {
              cpuKilled = true;
              killTree();
            }
          }, 100)
        : null;
    abortSignal?.addEventListener('abort', onAbort, { once: true });
    if (abortSignal?.aborted) killTree();
  };
  if (!isWarm) armLimits();
  // If Ward itself is told to stop, the sandbox goes with it (bwrap --die-with-parent covers SIGKILL of Ward).
  const onExit = () => killTree();
  process.once('exit', onExit);

  let ended = false;
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    // A command that ended without reading all its stdin: Ward stops reading the caller's for it.
    child.once('exit', (c, s) => ((ended = true), lifeline.destroy(), relays.stopInput(), resolve([c, s])));
    child.once('error', () => ((ended = true), lifeline.destroy(), relays.stopInput(), resolve([null, null])));
  });
  let markHandedOut = () => {};
  const handedOut = new Promise<void>((r) => (markHandedOut = r));
  // A warm sandbox's inner launcher answers one byte once it has taken its command (before exec).
  let taken = false;
  const takenP = new Promise<void>((r) => {
    if (!isWarm) return;
    const ch = stdio[FD_ARGV]!;
    ch.on('error', () => {});
    ch.on('data', (c: Buffer) => {
      if (c.length > 0 && c[0] === 0x41) ((taken = true), r());
    });
  });

  // The broker failing to start leaves the sandbox without network: refuse the run rather than
  // let the command meet a dead network it was promised.
  let brokerError: Error | null = null;
  broker?.catch((e: Error) => {
    brokerError = e;
    killTree();
  });
  let netClosed = false;
  const closeNet = async () => {
    if (netClosed) return;
    netClosed = true;
    if (broker) await broker.then((b) => b.close()).catch(() => {});
    removeRunDir();
  };
  const flushNet = () => {
    netLaunched = true;
    for (const r of pending) opts.onRecord?.(r);
    pending = [];
  };

  // Relayed output is written while the caller's fd takes it, but not past the run's time: a
  // reader who stopped (`| less` left on its first page) must not hold Ward, with no exit record,
  // after the command is gone. Limits: the wall_time deadline, or a short grace after a kill by it
  // or by the abort signal (output already made reaches a reader who is still reading); no
  // wall_time and no abort: as long as the reader takes (as the command itself would have waited).
  const drainOutput = async (): Promise<(1 | 2)[]> => {
    const now = performance.now();
    const cutAt = timedOut || abortSignal?.aborted ? now + OUTPUT_GRACE_MS : wallDeadline !== null ? Math.max(wallDeadline, now + OUTPUT_GRACE_MS) : null;
    let grace = cutAt !== null ? loopGrace(Math.min(cutAt - now, MAX_TIMER_MS), true) : null;
    let onLateAbort = () => {};
    const gaveUp = new Promise<'cut'>((resolve) => {
      void grace?.start().then(() => resolve('cut'));
      onLateAbort = () => {
        grace?.cancel();
        grace = loopGrace(OUTPUT_GRACE_MS, true);
        void grace.start().then(() => resolve('cut'));
      };
      abortSignal?.addEventListener('abort', onLateAbort, { once: true });
    });
    const how = await Promise.race([streamsDone.then(() => 'done' as const), gaveUp]);
    grace?.cancel();
    abortSignal?.removeEventListener('abort', onLateAbort);
    return how === 'cut' ? relays.cut() : [];
  };

  const result = (async (): Promise<RunResult> => {
    let completed = false;
    try {
      const r = await body();
      completed = true;
      return r;
    } finally {
      stopWatch?.();
      await closeNet();
      // A run that failed (its supervisor, its launcher) never reached body()'s own save: what the
      // command did before that, a rule's first half included, must still bind the session's next command.
      if (!completed) saveToSession();
    }
  })();
  async function body(): Promise<RunResult> {
    // A warm sandbox waits here for its command (or its end: then it reports why below).
    if (isWarm) await Promise.race([handedOut, exited]);
    // The status socket reaches EOF when the command has been exec'd (every holder
    // has closed it by then) or the launch failed. If the process died first, wait
    // briefly for the last bytes, without keeping the event loop alive afterwards.
    // unref(): the timer may be armed after the race is already won (the process exits
    // after the status EOF); it must never hold the event loop open.
    const grace = loopGrace(STATUS_GRACE_MS, false);
    await Promise.race([statusDone, exited.then(() => grace.start())]);
    grace.cancel();
    // The byte is sent before the exec that ended the status stream: already here, or never.
    if (isWarm && handedAt !== null) await Promise.race([takenP, exited]);

    const killAndRemove = async () => {
      killTree();
      await exited;
      // Armed clocks would keep the process alive after the refusal.
      if (wall) clearTimeout(wall);
      if (cpuWatch) clearInterval(cpuWatch);
      if (cgroup) await cgroup.remove();
    };
    let status: LauncherStatus;
    try {
      status = parseLauncherStatus(Buffer.concat(statusChunks).toString('utf8'));
    } catch (e) {
      // Only Ward's launchers write there; anything malformed means the launch cannot be trusted.
      await killAndRemove();
      throw new WardError(`the launcher's status report is malformed: ${(e as Error).message}`, { step: 'launcher:status' });
    }
    // The launcher checked this before the exec; checked again in case its requirements never reached it.
    const weak = status.ready ? confinementProblem(status.ready, confinement, landlockMode) : null;
    if (weak !== null) {
      await killAndRemove();
      throw new WardError(`the sandbox is not confined as Ward asked (${weak}): the launcher did not check it before the command started, so the command was killed`, {
        step: 'launcher:confinement',
        fix: 'the bwrap Ward ran, or its arguments, were changed: check WARD_BWRAP and `ward doctor`',
      });
    }
    const failure = status.failure;
    const execFailed = failure?.stage === 'inner' && failure.step === 'exec';
    if (landlockMode !== 'off' && status.ready?.landlock.status === 'unavailable') degraded.push('landlock: not available on this kernel');

    const launchRecord: LaunchRecord = {
      type: 'launch',
      ward_version: WARD_VERSION,
      time: new Date().toISOString(),
      policy_sha256: plan.policy.sha256,
      plan_sha256: plan.sha256,
      policy_sources: plan.policy.sources,
      argv,
      workspace: eff.workspace,
      cwd: plan.mounts.cwd,
      layers: {
        namespaces: NAMESPACE_FLAGS.map((f) => f.replace('--unshare-', '')).concat('mount'),
        seccomp: { sha256: plan.seccomp.sha256, instructions: plan.seccomp.instructions },
        cgroup: cgroup ? { version: cgroup.version, applied: cgroup.applied } : null,
        rlimits,
        userns_limits: plan.usernsLimits,
        landlock_mode: landlockMode,
        ...(dyn ? { rules: dyn.rules.map((r) => `after ${r.after.map((m) => `${m.access} ${m.target}`).join(' and ')} -> revoke ${r.revoke.map((m) => `${m.access} ${m.target}`).join(', ')}`) } : {}),
        ...(supervisor && notifyFilter
          ? {
              supervisor: {
                syscalls: [...new Set(supervise!.syscalls)],
                notified: [...notifyFilter.names.values()],
                instructions: notifyFilter.instructions,
                ...(await supervisor.ready.then(
                  (r) => ({ caps_dropped: r.capsDropped, sync_wake_up: r.syncWakeUp, wait_killable: r.waitKillable }),
                  () => ({ caps_dropped: false, sync_wake_up: false, wait_killable: false }),
                )),
              },
            }
          : {}),
        network: plan.network
          ? {
              allow: plan.network.allow.map((r) => `${r.host}:${r.port}`),
              allow_local: plan.network.allowLocal,
              relay_ports: plan.network.ports,
              secrets: plan.network.secrets.map((sec) => ({ name: sec.name, hosts: sec.hosts.map((h) => `${h.host}:${h.port}`), source: sec.source })),
            }
          : null,
      },
      observed: status.ready,
      degraded,
      notes: plan.notes,
      ...(v ? { verification: v } : {}),
      ...(session ? { session: { name: session.name, fired_before: firedIn(dyn!.rules, session.initial) } } : {}),
      ...(handedAt !== null ? { pooled: { warm_ms: Math.round(Number(handedAt - warmSince) / 1e6) } } : {}),
    };
    // Recorded as the command starts, so a long run is in the log before it ends.
    if (status.ready && (!isWarm || taken)) opts.onRecord?.(launchRecord);
    flushNet();

    const [code, signal] = await exited;
    // The loop ends by itself once no process uses the filter; stop() is the backstop.
    const supervised = await supervisor?.stop();
    if (wall) clearTimeout(wall);
    if (cpuWatch) clearInterval(cpuWatch);
    abortSignal?.removeEventListener('abort', onAbort);
    process.removeListener('exit', onExit);
    const outputCut = await drainOutput();

    const oom = cgroup?.oomKilled() ?? false;
    const pidsRefused = cgroup?.pidsRefused() ?? 0;
    const cpuUsed = cgroup?.cpuSeconds() ?? null;
    if (cgroup) await cgroup.remove();

    if (supervisorError) {
      throw new WardError(`${supervisorError as string}; the sandbox was killed so that nothing ran unsupervised`, {
        step: 'supervise',
        // A policy's rules cannot run without the supervisor: say how to find out why, and the way out.
        ...(dyn ? { fix: '`ward doctor` checks supervised mode on this host (host.seccomp-notify); a container whose seccomp profile refuses user notification must allow it; or remove `rules:` from the policy to run without its revocations' } : {}),
      });
    }
    if (failure?.stage === 'outer' && !status.ready && (failure.step === 'relay' || failure.step === 'userns-limits')) {
      // The watchdog found no sandbox init because bwrap itself failed (user namespaces refused,
      // most often): bwrap's reason and its fix come first.
      const diagnosis = diagnoseBwrapFailure(bwrap, code, capture ? Buffer.concat(err).toString('utf8') : undefined);
      if (diagnosis.step !== 'bwrap') throw diagnosis;
    }
    if (failure?.stage === 'outer') {
      throw new WardError(`the launcher could not ${failure.step === 'cgroup-join' ? `join the cgroup (${failure.detail})` : failure.step}: ${failure.error}${failure.step !== 'cgroup-join' && failure.detail ? ` (${failure.detail})` : ''}`, {
        step: `launcher:${failure.step}`,
        ...(failure.hint ? { fix: failure.hint } : {}),
      });
    }
    if (failure && !execFailed) {
      throw new WardError(`the sandbox could not be completed at step ${failure.step}: ${failure.error}${failure.detail ? ` (${failure.detail})` : ''}`, {
        step: `launcher:${failure.step}`,
        fix:
          failure.hint ??
          (failure.step.startsWith('landlock')
            ? 'this kernel has no usable Landlock (needs Linux >= 5.13 with landlock in lsm=); set `sandbox: { landlock: optional }` in the policy, or pass --allow-degraded if the policy allows it'
            : undefined),
      });
    }
    if (!status.ready && !(signal === 'SIGKILL' && (timedOut || abortSignal?.aborted))) {
      // bwrap exited before the launcher reported in (a SIGKILL from our own timer is not that).
      throw diagnoseBwrapFailure(bwrap, code, capture ? Buffer.concat(err).toString('utf8') : undefined);
    }
    if (isWarm && !taken) {
      // Killed or discarded while it waited: nothing ran in it, and nothing is recorded.
      throw new WardError(`the warm sandbox ended before it took a command (${signal ? `signal ${signal}` : `exit status ${code}`})`, { step: handedAt === null ? 'pool:warm' : 'pool:untaken' });
    }
    const raw = code ?? (signal ? 128 + osConstants.signals[signal] : EXIT_WARD_ERROR);
    const denials: Denial[] = [];
    let reason: RunReason = raw > 128 ? 'signal' : 'exit';
    let exitCode = raw;
    let message: string | null = null;
    if (execFailed) reason = 'exec-failed';
    if (timedOut) {
      reason = 'timeout';
      exitCode = EXIT_TIMEOUT;
      message = `wall_time limit (${plan.wallTimeMs! / 1000}s) reached: the whole process tree was killed`;
      denials.push({ layer: 'timeout', what: 'wall_time', verdict: 'killed', detail: message });
    } else if (cpuKilled || (plan.cpuTimeSec !== null && (raw === 128 + SIGXCPU || raw === 137) && cpuUsed !== null && cpuUsed >= plan.cpuTimeSec * CPU_NEAR_LIMIT)) {
      reason = 'cpu_time';
      exitCode = EXIT_LIMIT_KILLED;
      message = `cpu_time limit (${plan.cpuTimeSec}s) reached: the command was killed`;
      denials.push({ layer: cpuKilled ? 'cgroup' : 'rlimit', what: 'cpu_time', verdict: 'killed', detail: message });
    } else if (oom && raw === 137) {
      reason = 'memory';
      exitCode = EXIT_LIMIT_KILLED;
      message = `memory limit (${plan.cgroup.memory} bytes) reached: the kernel's OOM killer stopped the command`;
      denials.push({ layer: 'cgroup', what: 'memory', verdict: 'killed', detail: message });
    } else if (oom) {
      denials.push({ layer: 'cgroup', what: 'memory', verdict: 'killed', detail: 'a process in the sandbox was killed by the OOM killer (the command itself survived)' });
    }
    // No limit confirmed: a status a limit's signal would give is the command's own, named as such.
    if (message === null && raw === 128 + SIGXCPU && plan.cpuTimeSec !== null) {
      message = cpuUsed !== null
        ? `exit status ${raw}, as SIGXCPU would give, but the sandbox used ${cpuUsed.toFixed(2)}s of its ${plan.cpuTimeSec}s cpu_time: the command's own status, not a limit kill`
        : `exit status ${raw}, as SIGXCPU would give: RLIMIT_CPU (${rlimits.cpu?.[0] ?? plan.cpuTimeSec}s per process) sends it, and so can the command itself; without the cgroup's CPU accounting Ward cannot tell which, so it is recorded as the command's own status`;
    }
    if (message === null && raw === 128 + SIGXFSZ && plan.rlimits.fsize) {
      message = `exit status ${raw}, as SIGXFSZ would give: RLIMIT_FSIZE (file_size, ${plan.rlimits.fsize[0]} bytes) sends it to a process writing past the limit, and so can the command itself; Ward cannot tell which, so it is recorded as the command's own status`;
    }
    if (pidsRefused > 0) denials.push({ layer: 'cgroup', what: 'pids', verdict: 'refused', detail: `${pidsRefused} fork/clone calls refused at the pids limit (${plan.cgroup.pids})` });
    if (supDropped > 0) denials.push({ layer: 'supervisor', what: 'more refusals', verdict: 'refused', detail: `${supDropped} more refusals by the supervisor were not recorded one by one` });
    if (truncated) denials.push({ layer: 'output', what: 'output', verdict: 'truncated', detail: `output beyond ${outputCap} bytes was dropped` });
    for (const fd of outputCut) {
      const name = fd === 1 ? 'stdout' : 'stderr';
      denials.push({ layer: 'output', what: name, verdict: 'truncated', detail: `the caller's ${name} stopped taking the command's output (a reader that stopped reading); what it had not taken when the run's time was up was dropped, so that Ward could finish the run` });
    }

    // Connections still open are cut and recorded before the exit record.
    await closeNet();
    // After closeNet, so a relay that stopped as the run ended has been heard. Reported, not a
    // failed run: the sandbox lost its network (it gained nothing), the connections the relay
    // carried were counted before it went, and the command's status is its own.
    if (relayExit !== null) {
      denials.push({ layer: 'network', what: 'relay', verdict: 'killed', detail: `the network relay stopped during the run (${relayExit as string}): the sandbox had no network from then on; the connections it carried were cut, their byte counts sent first` });
    }
    // What this command added to its session (a rule's first half included) is kept for the next.
    saveToSession();
    if (sessionError) {
      throw new WardError(`the state of session '${session!.name}' could not be saved (${(sessionError as Error).message}): later commands of the session would run without this command's revocations`, {
        step: 'session',
        fix: `check that ${path.dirname(session!.file)} is writable by this user; until it is, do not run further commands in this session`,
      });
    }
    if (brokerError) {
      throw new WardError(`the egress broker could not start: ${(brokerError as Error).message}`, { step: 'egress' });
    }
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (opts.onRecord) {
      for (const d of denials) opts.onRecord({ type: 'denial', ...d });
      opts.onRecord({ type: 'exit', exit_code: exitCode, raw_exit_code: raw, reason, message, output_truncated: truncated, duration_ms: Math.round(durationMs) });
    }
    return {
      exitCode,
      rawExitCode: raw,
      reason,
      message,
      stdout: Buffer.concat(out),
      stderr: Buffer.concat(err),
      outputTruncated: truncated,
      outputCut,
      denials: [...supDenials, ...denials],
      net: netEvents,
      revocations,
      launch: launchRecord,
      durationMs,
      ...(supervised ? { supervisor: supervised } : {}),
    };
  }
  result.catch(() => {}); // the caller gets the rejection through `result`; avoid an unhandled warning in between

  const handle: RunHandle = { pid: child.pid ?? -1, stdin: stdinMode === 'pipe' ? child.stdin : null, result, kill: killTree };
  if (!isWarm) return { handle, warm: null };

  // The first status line is "ready" (every layer in force, inner waiting on FD_ARGV), or a failure.
  const ready = new Promise<void>((resolve, reject) => {
    const onData = () => {
      const text = Buffer.concat(statusChunks).toString('utf8');
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      stdio[FD_STATUS]!.off('data', onData);
      try {
        const first = JSON.parse(text.slice(0, nl)) as { step?: unknown; landlock?: unknown };
        if (first.step === undefined && first.landlock !== undefined) resolve();
      } catch {
        /* malformed: the result reports it */
      }
    };
    stdio[FD_STATUS]!.on('data', onData);
    result.then(
      () => reject(new WardError('the warm sandbox ended before it was ready', { step: 'pool:warm' })),
      (e: unknown) => reject(e),
    );
  });
  ready.catch(() => {});
  const argvChannel = stdio[FD_ARGV]!;
  argvChannel.on('error', () => {});
  const warm: WarmSandbox = {
    pid: handle.pid,
    ready,
    ended: result.then(
      () => {},
      () => {},
    ),
    usable: () => handedAt === null && !ended && child.exitCode === null && child.signalCode === null,
    handOut(cmd, h = {}) {
      if (!warm.usable()) throw new WardError('this warm sandbox has ended or was handed out already: a sandbox runs one command', { step: 'pool:handout' });
      const message = encodeArgvMessage(cmd);
      argv = [...cmd];
      handedAt = process.hrtime.bigint();
      started = handedAt;
      if (typeof h.output === 'object') {
        fwd = h.output;
        // Forwarded output keeps no copy: only the policy's resources.output caps it.
        outputCap = plan.outputBytes;
      }
      if (h.stdin !== 'pipe') child.stdin?.end();
      abortSignal = h.signal;
      armLimits();
      argvChannel.end(message);
      markHandedOut();
      return { pid: handle.pid, stdin: h.stdin === 'pipe' ? child.stdin : null, result, kill: killTree };
    },
    async discard() {
      // Closing the channel alone would end inner (argv-read, EOF); killing is quicker and certain.
      argvChannel.destroy();
      killTree();
      await result.then(
        () => {},
        () => {},
      );
    },
  };
  return { handle, warm };
}


