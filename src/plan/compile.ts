/**
 * policy -> Plan: everything the launch needs, as plain data, decided before any
 * process starts. A Plan can be printed, hashed and checked (`ward policy show
 * --plan`, and later `ward verify`) without running anything.
 */
import { readFileSync } from 'node:fs';
import { PolicyError } from '../errors.js';
import { policyRules, withoutSocketNodes, type RulesPlan } from './rules.js';
import type { LoadedPolicy } from '../policy/load.js';
import { canonicalJson, sha256Hex } from '../policy/canonical.js';
import { compileSeccomp } from '../seccomp/index.js';
import { planMounts, type Guarded, type MountContext, type MountPlan } from './mounts.js';
import { socketAreas } from './sockets.js';
import { accountHome, ensureMaskFile, ensureWardDirs, homeDir } from '../paths.js';
import { wardOwnDirs, wardStatePaths } from '../policy/secrets.js';
import { ensureLauncher, USERNS_LIMIT_NAMES } from '../launcher/launcher.js';
import { planNetwork, refuseVisibleSecretFiles, type NetworkPlan } from '../net/policy.js';

export type RlimitValue = number | 'unlimited';
export type Rlimits = Record<string, [RlimitValue, RlimitValue]>;

export interface CgroupLimits {
  memory: number | null;
  pids: number | null;
  cpus: number | null;
}

export interface Plan {
  policy: LoadedPolicy;
  home: string;
  mounts: MountPlan;
  seccomp: { program: Buffer; sha256: string; instructions: number };
  landlock: { mode: 'required' | 'optional' | 'off'; scope: boolean };
  /** Set inside the sandbox's user namespace by the launcher. */
  rlimits: Rlimits;
  /**
   * The sandbox user namespace's own /proc/sys/user limits, set by the launcher's watchdog
   * before the command starts (userNamespaceLimits below).
   */
  usernsLimits: Record<string, number>;
  cgroup: CgroupLimits;
  env: Record<string, string>;
  wallTimeMs: number | null;
  cpuTimeSec: number | null;
  outputBytes: number | null;
  /** The egress path (broker rules, relay ports); null: no network at all. */
  network: NetworkPlan | null;
  /**
   * Dynamic rules (`rules:`) and the syscalls supervised mode intercepts for them (./rules.ts);
   * null: no rules, no supervisor. A plan with rules is only ever run supervised: launch()
   * refuses it when supervised mode cannot run here, never runs it with the rules unenforced.
   */
  rules: RulesPlan | null;
  notes: string[];
  /** SHA-256 over the compiled artefacts (mount ops, Landlock rules, seccomp bytes, limits, env names). */
  sha256: string;
}

export interface CompileContext {
  home: string;
  /** The caller's environment, from which `env.pass` names are taken. */
  env: NodeJS.ProcessEnv;
}

const seccompCache = new Map<string, Plan['seccomp']>();

/**
 * Old syscalls a current libc no longer calls, and what it calls instead. Denying only the old
 * name looks like a rule but leaves ordinary programs untouched (glibc's open() is openat).
 */
const MODERN: Record<string, string[]> = {
  open: ['openat', 'openat2'],
  creat: ['openat', 'openat2'],
  unlink: ['unlinkat'],
  rmdir: ['unlinkat'],
  rename: ['renameat', 'renameat2'],
  renameat: ['renameat2'],
  mkdir: ['mkdirat'],
  mknod: ['mknodat'],
  link: ['linkat'],
  symlink: ['symlinkat'],
  readlink: ['readlinkat'],
  chmod: ['fchmodat', 'fchmodat2'],
  chown: ['fchownat'],
  lchown: ['fchownat'],
  access: ['faccessat', 'faccessat2'],
  stat: ['newfstatat', 'statx'],
  lstat: ['newfstatat', 'statx'],
  utime: ['utimensat'],
  utimes: ['utimensat'],
  futimesat: ['utimensat'],
  fork: ['clone', 'clone3'],
  vfork: ['clone', 'clone3'],
  dup2: ['dup3'],
  pipe: ['pipe2'],
  poll: ['ppoll'],
  select: ['pselect6'],
  epoll_create: ['epoll_create1'],
  epoll_wait: ['epoll_pwait', 'epoll_pwait2'],
  eventfd: ['eventfd2'],
  signalfd: ['signalfd4'],
  inotify_init: ['inotify_init1'],
  getdents: ['getdents64'],
};

export function syscallNotes(deny: readonly string[]): string[] {
  const notes: string[] = [];
  for (const name of deny) {
    const missing = (MODERN[name] ?? []).filter((m) => !deny.includes(m));
    if (missing.length > 0) notes.push(`syscalls.deny has ${name} but not ${missing.join(', ')}: programs on a current libc call ${missing.length > 1 ? 'those' : 'that'} instead, so ${name} alone stops almost nothing; add ${missing.join(', ')} to deny it`);
  }
  return notes;
}

/** Ward's own /proc/self/limits, read once: nothing in Ward changes its limits, and every compile asks. */
let ownLimits: string[] | undefined;

/** Ward's own hard limit for a /proc/self/limits line ("Max pending signals"); null: unlimited or unknown. */
function ownHardLimit(label: string): number | null {
  if (ownLimits === undefined) {
    try {
      ownLimits = readFileSync('/proc/self/limits', 'utf8').split('\n');
    } catch {
      ownLimits = [];
    }
  }
  const line = ownLimits.find((l) => l.startsWith(label));
  const hard = Number(line?.slice(label.length).trim().split(/\s+/)[1]);
  return Number.isSafeInteger(hard) && hard >= 0 ? hard : null;
}

/**
 * Queued signals and POSIX message queue bytes are charged to the user, at every level of the
 * user namespace chain, so the sandbox's use counts against the caller's own per-user budget on
 * the host: with the caller's limits, a sandbox could queue signals (or fill queues) until every
 * other process of that user, root's daemons for a root caller, got EAGAIN (EMFILE). Bounded
 * below the caller's hard limit, which an unprivileged inner launcher could not raise.
 */
const SIGPENDING = 1024;
/** One queue of the default size (10 messages of 8 KiB) fits; the default per-user budget is 800 KiB. */
const MSGQUEUE = 100 * 1024;

function userBudget(value: number, label: string): [number, number] {
  const hard = ownHardLimit(label);
  const v = hard === null ? value : Math.min(value, hard);
  return [v, v];
}

/**
 * Inotify and fanotify instances and watches are charged to the caller's uid on the host too
 * (every level of the user namespace chain counts), and a new user namespace's own limits start
 * at INT_MAX: the host's per-user limit is then the sandbox's, and a sandbox holding it leaves
 * the caller's other processes with EMFILE/ENOSPC. The sandbox gets an eighth of each host
 * limit (16 of the default 128 inotify instances), so it can never take them all; several
 * sandboxes at once still share the one budget.
 */
export const USERNS_LIMIT_SHARE = 8;

function userNamespaceLimits(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of USERNS_LIMIT_NAMES) {
    let host: number;
    try {
      host = Number(readFileSync(`/proc/sys/user/${name}`, 'utf8').trim());
    } catch {
      continue; // an older kernel without this counter (fanotify's came in 5.13): nothing to bound
    }
    if (Number.isSafeInteger(host) && host >= 0) out[name] = Math.max(1, Math.floor(host / USERNS_LIMIT_SHARE));
  }
  return out;
}

function readNrOpen(): number | null {
  try {
    const n = Number(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim());
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * What planMounts needs besides the policy. Makes Ward's own directories, its mask file and
 * (when it is built into the cache) its launcher first, so the mandatory denies of those
 * directories always find them and mask them (a mask is only made for what exists), and names
 * the places no writable grant may contain: the caller's home and Ward's own directories.
 */
export function mountContext(policy: LoadedPolicy, ctx: CompileContext): MountContext {
  return { home: ctx.home, origins: policy.origins, guarded: prepareWardFiles(ctx), socketAreas: socketAreas(ctx.env) };
}

function prepareWardFiles(ctx: CompileContext): Guarded[] {
  const own = wardOwnDirs(ctx.env, ctx.home);
  ensureWardDirs(own);
  ensureMaskFile();
  ensureLauncher();
  // The account's home (the password database's) as well as HOME's: a harness's scratch HOME
  // does not make the real one's startup files, or Ward's files of earlier runs there, safe to write.
  const account = accountHome();
  const homes = [...new Set([ctx.home, homeDir(process.env), ...(account === undefined ? [] : [account])])];
  for (const d of account === undefined ? [] : wardStatePaths({}, account)) if (!own.includes(d)) own.push(d);
  return [
    ...homes.map((h) => ({
      path: h,
      what: 'your home directory',
      why: 'a sandboxed command could rewrite ~/.bashrc, ~/.profile, systemd user units and other files that later run outside the sandbox, and Ward\'s own keys, audit log and launcher',
    })),
    ...own.map((d) => ({
      path: d,
      what: "Ward's own directory",
      why: 'a sandboxed command could plant what a later run executes on the host (the launcher) or trusts (the mask file, the audit key and log)',
      fix: 'or point XDG_STATE_HOME, XDG_CONFIG_HOME or XDG_CACHE_HOME (whichever places it there) outside that grant',
    })),
  ];
}

export function compilePlan(policy: LoadedPolicy, ctx: CompileContext): Plan {
  const eff = policy.effective;
  const rules = policyRules(policy);

  const network = planNetwork(policy, ctx.env);

  const planned = planMounts(eff, mountContext(policy, ctx));
  if (network) refuseVisibleSecretFiles(policy, planned.ops);
  const sockets = withoutSocketNodes(planned.landlock, rules);
  const mounts = { ...planned, landlock: sockets.landlock, notes: [...planned.notes, ...sockets.notes] };

  const fileSize = eff.resources.file_size !== null;
  const supervised = rules !== null;
  const key = canonicalJson({ syscalls: eff.syscalls, fileSize, supervised });
  let seccomp = seccompCache.get(key);
  if (!seccomp) {
    let compiled;
    try {
      compiled = compileSeccomp({ extraDeny: eff.syscalls.deny, allowIa32: eff.syscalls.allow_ia32, fileSize, supervised });
    } catch (e) {
      throw new PolicyError(policy.sources.at(-1) ?? '(policy)', 'syscalls.deny', (e as Error).message, 'use x86_64 syscall names as in `man 2 syscalls` (e.g. "ptrace", "mknodat")');
    }
    seccomp = { program: compiled.program, sha256: sha256Hex(compiled.program), instructions: compiled.instructions };
    seccompCache.set(key, seccomp);
  }

  const r = eff.resources;
  const rlimits: Rlimits = {
    // No core dumps: a crashing tool would write its memory (tokens included) into the workspace.
    core: [0, 0],
    sigpending: userBudget(SIGPENDING, 'Max pending signals'),
    msgqueue: userBudget(MSGQUEUE, 'Max msgqueue size'),
  };
  if (r.open_files !== null) {
    // The kernel refuses RLIMIT_NOFILE above fs.nr_open: say so now, not as a failed launch.
    const nrOpen = readNrOpen();
    if (nrOpen !== null && r.open_files > nrOpen) {
      throw new PolicyError(policy.origins.get('resources\0open_files')?.file ?? policy.sources.at(-1) ?? '(policy)', 'resources.open_files', `${r.open_files} is more than this host's fs.nr_open (${nrOpen}), the most the kernel lets a process have open`, `write at most ${nrOpen}, or "unlimited"`);
    }
    rlimits.nofile = [r.open_files, r.open_files];
  }
  if (r.file_size !== null) rlimits.fsize = [r.file_size, r.file_size];
  if (r.cpu_time !== null) {
    // Soft limit sends SIGXCPU at the limit, the hard one SIGKILL a second later.
    const s = Math.max(1, Math.ceil(r.cpu_time));
    rlimits.cpu = [s, s + 1];
  }
  // RLIMIT_NPROC is per user namespace for an unprivileged caller (a real second layer
  // under the pids cgroup); the kernel does not apply it to the initial root user.
  if (r.pids !== null) rlimits.nproc = [r.pids, r.pids];

  const env: Record<string, string> = {};
  for (const name of eff.env.pass) {
    const v = name === 'HOME' ? ctx.home : ctx.env[name];
    if (v !== undefined) env[name] = v;
  }
  // Proxy variables first, so that a policy's env.set can still override them.
  if (network) Object.assign(env, network.env);
  Object.assign(env, eff.env.set);

  const plan: Omit<Plan, 'sha256'> = {
    policy,
    home: ctx.home,
    mounts,
    seccomp,
    landlock: { mode: eff.sandbox.landlock, scope: true },
    rlimits,
    usernsLimits: userNamespaceLimits(),
    cgroup: { memory: r.memory, pids: r.pids, cpus: r.cpus },
    env,
    wallTimeMs: r.wall_time === null ? null : Math.round(r.wall_time * 1000),
    cpuTimeSec: r.cpu_time,
    outputBytes: r.output,
    network,
    rules,
    notes: [...mounts.notes, ...syscallNotes(eff.syscalls.deny)],
  };
  const sha256 = sha256Hex(
    canonicalJson({
      policy: policy.sha256,
      mounts: mounts.ops,
      landlock: { ...plan.landlock, rules: mounts.landlock },
      cwd: mounts.cwd,
      seccomp: seccomp.sha256,
      rlimits,
      userns_limits: plan.usernsLimits,
      cgroup: plan.cgroup,
      env: Object.keys(env).sort(),
      network: network && { ...network, secrets: network.secrets.map(({ read: _read, ...rest }) => rest) },
      // Only when there are rules, so every other plan keeps the hash it had.
      ...(rules ? { rules } : {}),
    }),
  );
  return { ...plan, sha256 };
}
