/**
 * Resource limits for the whole process tree, from a cgroup Ward creates per run.
 *
 * cgroup v2 first (what users' systemd machines run); v1 as the fallback (this
 * kind of machine: memory, pids, cpu and cpuacct as separate hierarchies). Ward
 * creates `ward-<pid>-<n>` beside or below its own cgroup, where it may write:
 * as root anywhere, as a user where systemd delegated a subtree. The launcher
 * joins it before bwrap unshares the cgroup namespace, so the sandbox sees its
 * own cgroup as its root and cannot leave it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync, accessSync, constants } from 'node:fs';
import path from 'node:path';
import { WardError } from '../errors.js';
import type { CgroupLimits } from '../plan/compile.js';
import { readMountTable } from '../plan/aliases.js';

export interface Cgroup {
  version: 1 | 2;
  /** The directories created (one for v2, one per controller for v1). */
  dirs: string[];
  /** Files the launcher writes its pid into. */
  procsFiles: string[];
  /** What was written, as `file=value`, for the launch record. */
  applied: string[];
  /** True once the kernel's OOM killer killed something in this cgroup. */
  oomKilled(): boolean;
  /** CPU time used by the whole tree so far, in seconds, or null if not accounted. */
  cpuSeconds(): number | null;
  /** How many forks the pids limit refused (pids.events "max"). */
  pidsRefused(): number;
  /** SIGKILL everything in the cgroup. */
  killAll(): void;
  /** Remove the cgroup (after its processes are gone); retries briefly. */
  remove(): Promise<void>;
}

export interface CgroupMount {
  root: string;
  mountpoint: string;
  type: 'cgroup' | 'cgroup2';
  options: string[];
}

const CPU_PERIOD_US = 100_000;
let counter = 0;
/** Parents already swept for stale cgroups by this process (one sweep per parent is enough). */
const swept = new Set<string>();

export function needsCgroup(l: CgroupLimits): boolean {
  return l.memory !== null || l.pids !== null || l.cpus !== null;
}

/**
 * Creates the run's cgroup with the limits set, or throws a WardError naming
 * what is missing and how to get it.
 */
export function createCgroup(limits: CgroupLimits, opts: { cpuAccounting: boolean }): Cgroup {
  const wanted = controllersFor(limits, opts.cpuAccounting);
  const mounts = readCgroupMounts();
  const self = readSelfCgroups();
  const name = `ward-${process.pid}-${++counter}`;
  const reasons: string[] = [];

  const v2 = mounts.find((m) => m.type === 'cgroup2');
  if (v2) {
    const r = tryV2(v2, self.get('') ?? '/', wanted, limits, name);
    if (typeof r !== 'string') return r;
    reasons.push(`cgroup v2 at ${v2.mountpoint}: ${r}`);
  } else reasons.push('no cgroup v2 mount');

  const r1 = tryV1(mounts, self, wanted, limits, name, opts.cpuAccounting);
  if (typeof r1 !== 'string') return r1;
  reasons.push(`cgroup v1: ${r1}`);

  throw new WardError(`cannot apply the policy's resource limits (${describe(limits, opts.cpuAccounting)}): ${reasons.join('; ')}`, {
    step: 'cgroup',
    fix:
      process.getuid?.() === 0
        ? `mount the cgroup controllers (memory, pids, cpu${opts.cpuAccounting ? ', cpuacct' : ''}), or remove the limits from the policy`
        : 'run Ward in a delegated cgroup: `systemd-run --user --scope -p Delegate=yes ward run ...`; or set resources.memory/pids/cpus/cpu_time to "unlimited"; or pass --allow-degraded (if the policy allows it) to fall back to per-process rlimits',
  });
}

function controllersFor(l: CgroupLimits, cpuAccounting: boolean): Set<string> {
  const s = new Set<string>();
  if (l.memory !== null) s.add('memory');
  if (l.pids !== null) s.add('pids');
  if (l.cpus !== null || cpuAccounting) s.add('cpu');
  return s;
}

function describe(l: CgroupLimits, cpuAccounting: boolean): string {
  return [l.memory !== null && `memory ${l.memory}`, l.pids !== null && `pids ${l.pids}`, l.cpus !== null && `cpus ${l.cpus}`, cpuAccounting && 'cpu_time over the whole process tree'].filter(Boolean).join(', ');
}

function tryV2(m: CgroupMount, selfPath: string, wanted: Set<string>, limits: CgroupLimits, name: string): Cgroup | string {
  // Candidates for the parent: as root, a `ward` cgroup at the top; otherwise the
  // parent of our own cgroup (v2 forbids processes in a cgroup whose children have
  // controllers, so a sibling of our own leaf is where a delegated user can create).
  // Not path.join for the root cgroup: it would keep a trailing slash, and the guard below never match.
  const own = selfPath === '/' ? m.mountpoint : path.join(m.mountpoint, selfPath);
  // A process in the mount's root cgroup has no parent cgroup of its own: dirname would leave
  // the cgroup filesystem.
  const ownParent = own === m.mountpoint ? [] : [path.dirname(own)];
  const candidates = process.getuid?.() === 0 ? [path.join(m.mountpoint, 'ward'), ...ownParent] : ownParent;
  let why = 'no writable parent cgroup';
  for (const parent of candidates) {
    let made = false;
    try {
      if (!existsSync(parent)) {
        enableControllers(path.dirname(parent), wanted);
        mkdirSync(parent);
        made = true;
      }
      enableControllers(parent, wanted);
      const have = new Set(readFileSync(path.join(parent, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/));
      const missing = [...wanted].filter((c) => !have.has(c));
      if (missing.length) {
        why = `controllers ${missing.join(', ')} not enabled in ${parent}`;
        // Do not leave behind a parent that could not be used (a hybrid host's v2 mount
        // often has no controllers at all).
        if (made) rmdirQuietly(parent);
        continue;
      }
      accessSync(parent, constants.W_OK);
      sweepStale(parent);
      const dir = path.join(parent, name);
      mkdirSync(dir);
      const applied: string[] = [];
      const write = (file: string, value: string, optional = false) => {
        try {
          writeFileSync(path.join(dir, file), value);
          applied.push(`${file}=${value}`);
        } catch (e) {
          if (!optional) throw rejected(file, value, e);
        }
      };
      try {
        if (limits.memory !== null) {
          write('memory.max', String(limits.memory));
          write('memory.swap.max', '0', true); // the limit is real memory, not swap
        }
        if (limits.pids !== null) write('pids.max', String(limits.pids));
        if (limits.cpus !== null) write('cpu.max', `${Math.round(limits.cpus * CPU_PERIOD_US)} ${CPU_PERIOD_US}`);
      } catch (e) {
        rmdirSync(dir);
        throw e;
      }
      return {
        version: 2,
        dirs: [dir],
        procsFiles: [path.join(dir, 'cgroup.procs')],
        applied,
        oomKilled: () => Number(/\boom_kill (\d+)/.exec(readOr(path.join(dir, 'memory.events'), ''))?.[1] ?? 0) > 0,
        cpuSeconds: () => {
          const m2 = /\busage_usec (\d+)/.exec(readOr(path.join(dir, 'cpu.stat'), ''));
          return m2 ? Number(m2[1]) / 1e6 : null;
        },
        pidsRefused: () => eventCount(path.join(dir, 'pids.events'), 'max'),
        killAll: () => {
          if (existsSync(path.join(dir, 'cgroup.kill'))) {
            try {
              writeFileSync(path.join(dir, 'cgroup.kill'), '1');
              return;
            } catch {
              /* fall through to killing pid by pid */
            }
          }
          killPids(path.join(dir, 'cgroup.procs'));
        },
        remove: () => removeDirs([dir], () => killPids(path.join(dir, 'cgroup.procs'))),
      };
    } catch (e) {
      if (e instanceof WardError) throw e; // the value itself, which no other place would take either
      why = `${parent}: ${(e as Error).message}`;
    }
  }
  return why;
}

function rmdirQuietly(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    /* another run may be using it by now */
  }
}

function enableControllers(parent: string, wanted: Set<string>): void {
  const file = path.join(parent, 'cgroup.subtree_control');
  const have = new Set(readOr(file, '').trim().split(/\s+/));
  const available = new Set(readOr(path.join(parent, 'cgroup.controllers'), '').trim().split(/\s+/));
  const add = [...wanted].filter((c) => !have.has(c) && available.has(c));
  if (add.length === 0) return;
  try {
    writeFileSync(file, add.map((c) => `+${c}`).join(' '));
  } catch {
    /* not ours to change; the caller reports the missing controllers */
  }
}

function tryV1(mounts: CgroupMount[], self: Map<string, string>, wanted: Set<string>, limits: CgroupLimits, name: string, cpuAccounting: boolean): Cgroup | string {
  const need = new Set(wanted);
  if (need.has('cpu')) need.add('cpuacct');
  // v1 counts CPU time in cpuacct, not cpu: cpu_time's tree-wide watchdog needs it; cpu.cfs_quota_us (cpus) does not.
  if (limits.cpus === null) need.delete('cpu');
  const dirs: string[] = [];
  const byController = new Map<string, string>();
  const applied: string[] = [];
  try {
    for (const c of need) {
      const m = mounts.find((x) => x.type === 'cgroup' && x.options.includes(c));
      if (!m) {
        if (c === 'cpuacct' && !cpuAccounting) continue; // without cpu_time, accounting is a nicety; the quota is the limit
        throw new Error(`controller ${c} is not mounted`);
      }
      const existing = [...byController.entries()].find(([, d]) => d.startsWith(m.mountpoint + '/'));
      if (existing) {
        byController.set(c, existing[1]);
        continue;
      }
      const ownRaw = self.get(m.options.filter((o) => ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset', 'blkio', 'devices', 'freezer'].includes(o)).join(',')) ?? self.get(c) ?? '/';
      // mountinfo's root is the part of our path the mount already hides (inside a container).
      const rel = m.root !== '/' && ownRaw.startsWith(m.root) ? ownRaw.slice(m.root.length) || '/' : ownRaw;
      const parent = path.join(m.mountpoint, rel);
      accessSync(parent, constants.W_OK);
      sweepStale(parent);
      const dir = path.join(parent, name);
      mkdirSync(dir);
      dirs.push(dir);
      byController.set(c, dir);
    }
    const w = (c: string, file: string, value: string, optional = false) => {
      const dir = byController.get(c);
      if (!dir) throw new Error(`controller ${c} missing`);
      try {
        writeFileSync(path.join(dir, file), value);
        applied.push(`${c}/${file}=${value}`);
      } catch (e) {
        if (!optional) throw rejected(file, value, e, `${path.join(dir, file)}: ${(e as Error).message}`);
      }
    };
    if (limits.memory !== null) {
      w('memory', 'memory.limit_in_bytes', String(limits.memory));
      // With swap accounting, cap memory+swap too, or the tree just swaps past the limit.
      w('memory', 'memory.memsw.limit_in_bytes', String(limits.memory), true);
    }
    if (limits.pids !== null) w('pids', 'pids.max', String(limits.pids));
    if (limits.cpus !== null) {
      w('cpu', 'cpu.cfs_period_us', String(CPU_PERIOD_US));
      w('cpu', 'cpu.cfs_quota_us', String(Math.round(limits.cpus * CPU_PERIOD_US)));
    }
  } catch (e) {
    for (const d of dirs.reverse()) tryRmdir(d);
    if (e instanceof WardError) throw e;
    return (e as Error).message;
  }
  const memDir = byController.get('memory');
  const acctDir = byController.get('cpuacct');
  const anyDir = dirs[0]!;
  return {
    version: 1,
    dirs,
    // v1 `tasks`, not `cgroup.procs`: the launcher writes "0" there (itself, a single
    // thread), which the kernel moves without the global threadgroup lock: ~0.1 ms
    // instead of 6-25 ms per launch.
    procsFiles: dirs.map((d) => path.join(d, 'tasks')),
    applied,
    oomKilled: () => {
      if (!memDir) return false;
      const m = /\boom_kill (\d+)/.exec(readOr(path.join(memDir, 'memory.oom_control'), ''));
      return m !== null && Number(m[1]) > 0;
    },
    cpuSeconds: () => {
      if (!acctDir) return null;
      const v = readOr(path.join(acctDir, 'cpuacct.usage'), '').trim();
      return v ? Number(v) / 1e9 : null;
    },
    pidsRefused: () => (byController.get('pids') ? eventCount(path.join(byController.get('pids')!, 'pids.events'), 'max') : 0),
    killAll: () => killPids(path.join(anyDir, 'cgroup.procs')),
    remove: () => removeDirs(dirs, () => killPids(path.join(anyDir, 'cgroup.procs'))),
  };
}

/**
 * A limit the kernel refused as a value (EINVAL, ERANGE) is the policy's to fix, not the host's:
 * say which value, instead of the "mount the controllers" advice for a missing cgroup.
 */
function rejected(file: string, value: string, e: unknown, plain?: string): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code !== 'EINVAL' && code !== 'ERANGE') return plain === undefined ? (e as Error) : new Error(plain);
  return new WardError(`the kernel refused the limit ${file}=${value} (${code}): the policy's value is out of the range this kernel accepts`, {
    step: 'cgroup',
    fix: 'change resources.memory, resources.pids or resources.cpus in the policy to a smaller (or larger) value, or to "unlimited"',
  });
}

function eventCount(file: string, key: string): number {
  const m = new RegExp(`\\b${key} (\\d+)`).exec(readOr(file, ''));
  return m ? Number(m[1]) : 0;
}

function killPids(procsFile: string): void {
  for (const line of readOr(procsFile, '').split('\n')) {
    const pid = Number(line);
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
}

async function removeDirs(dirs: string[], kill: () => void): Promise<void> {
  for (let attempt = 0; attempt < 70; attempt++) {
    const left = dirs.filter((d) => existsSync(d) && !tryRmdir(d));
    if (left.length === 0) return;
    kill();
    // The sandbox's last processes are usually reaped within a millisecond of bwrap's
    // exit: retry at once a few times before backing off, or every run pays a sleep.
    await new Promise((r) => (attempt < 20 ? setImmediate(r) : setTimeout(r, attempt < 30 ? 5 : 20)));
  }
  // Still busy after ~1 s: say so rather than leave it silently.
  process.emitWarning(`ward: could not remove cgroup ${dirs.join(', ')} (processes still exiting); the next run removes it`);
}

function tryRmdir(d: string): boolean {
  try {
    rmdirSync(d);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** Removes empty cgroups left by Ward processes that died without cleaning up (SIGKILL). */
function sweepStale(parent: string): void {
  if (swept.has(parent)) return;
  swept.add(parent);
  let names: string[] = [];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^ward-(\d+)-\d+$/.exec(n);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // owner alive
    } catch {
      /* owner gone */
    }
    const dir = path.join(parent, n);
    if (readOr(path.join(dir, 'cgroup.procs'), 'x').trim() === '') tryRmdir(dir);
  }
}

/** The cgroup (v1) and cgroup2 mounts of this mount namespace, from /proc/self/mountinfo. */
export function readCgroupMounts(): CgroupMount[] {
  return readMountTable().mounts.flatMap(({ root, dest, type, options }) => (type === 'cgroup' || type === 'cgroup2' ? [{ root, mountpoint: dest, type, options }] : []));
}

/** controllers (comma-joined, '' for v2) -> path, from /proc/self/cgroup. */
function readSelfCgroups(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readOr('/proc/self/cgroup', '').split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    m.set(match[1]!, match[2]!);
    for (const c of match[1]!.split(',')) if (c && !m.has(c)) m.set(c, match[2]!);
  }
  return m;
}

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}
