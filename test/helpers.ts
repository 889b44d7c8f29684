/**
 * Shared by the sandbox and CLI tests: temporary workspaces and homes, and the
 * facts about how this run was started (as root, or as an unprivileged user
 * with or without a delegated cgroup: scripts/test.js sets WARD_TEST_CGROUP).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, type Dirent } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createCgroup, readCgroupMounts, type CgroupMount } from '../src/sandbox/cgroup.js';
import type { RunRecord } from '../src/sandbox/launch.js';
import type { RunOptions } from '../src/api.js';
import { PolicyError } from '../src/errors.js';
import assert from 'node:assert/strict';

export const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const isRoot = process.getuid?.() === 0;
/**
 * 'none' when this user has no cgroup it may write: resource limits must then be refused
 * (fail closed). scripts/test.js says which; run alone, the tests find out by trying.
 */
export const cgroupMode = (process.env.WARD_TEST_CGROUP ?? (isRoot ? 'root' : probeCgroup())) as 'root' | 'delegated' | 'none';

function probeCgroup(): 'delegated' | 'none' {
  try {
    const cg = createCgroup({ memory: 64 * 1024 * 1024, pids: 64, cpus: null }, { cpuAccounting: false });
    void cg.remove();
    return 'delegated';
  } catch {
    return 'none';
  }
}
export const hasCgroup = cgroupMode !== 'none';

const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory (real path), removed when the test file ends. */
export function tempDir(prefix = 'ward-test-'): string {
  const d = realpathSync(mkdtempSync(path.join(os.tmpdir(), prefix)));
  made.push(d);
  return d;
}

/** A workspace and a home beside it, with an env whose HOME points at that home. */
export function sandboxFixture(): { ws: string; home: string; env: NodeJS.ProcessEnv } {
  const base = tempDir();
  const ws = path.join(base, 'ws');
  const home = path.join(base, 'home');
  mkdirSync(ws);
  mkdirSync(home);
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_CACHE_HOME: process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache') };
  return { ws, home, env };
}

export function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Runs the built CLI (npm test builds it first). */
export function ward(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeout?: number } = {}) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/ward.js'), ...args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: opts.timeout ?? 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

/**
 * Runs the built CLI, as root, in a private mount namespace after the shell script `setup`
 * (run with `setupEnv` added, `set -e`) has changed the mounts there: a host laid out as the test
 * needs, made for this one process and its children (the host's mounts are untouched). A string
 * says why it cannot be done here. Not as an unprivileged user: mounts need a user namespace of
 * one's own, where root's files show as nobody's and Ward rightly refuses to run their bwrap.
 */
export function wardInMountNamespace(setup: string, setupEnv: Record<string, string>, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ReturnType<typeof ward> | string {
  if (!isRoot) return 'only root can change mounts in a mount namespace of its own here';
  if (!which('unshare')) return 'unshare (util-linux) is not installed';
  if (spawnSync('unshare', ['-m', '--propagation', 'private', 'true']).status !== 0) return 'this host does not let root make a mount namespace (unshare -m)';
  const script = 'sh -ec "$WARD_TEST_SETUP" || { echo "test: the mount setup failed" >&2; exit 99; }; exec "$@"';
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', process.execPath, path.join(ROOT, 'bin/ward.js'), ...args], {
    cwd: opts.cwd,
    env: { ...(opts.env ?? process.env), ...setupEnv, WARD_TEST_SETUP: setup },
    input: '',
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.notEqual(r.status, 99, r.stderr);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

/**
 * Runs the built CLI, as root, in a private mount namespace where the cgroup mounts `readOnly`
 * picks are remounted read-only: a host whose cgroups are unusable. A string says why it cannot
 * be done here.
 */
export function wardWithReadOnlyCgroups(
  readOnly: (m: CgroupMount) => boolean,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): ReturnType<typeof ward> | string {
  if (!isRoot) return 'only root can remount the cgroup filesystems';
  const mounts = readCgroupMounts().filter(readOnly).map((m) => m.mountpoint);
  if (mounts.length === 0) return 'no cgroup mount here of the kind the test needs';
  return wardInMountNamespace('for m in $WARD_TEST_RO; do mount -o remount,bind,ro "$m"; done', { WARD_TEST_RO: mounts.join(' ') }, args, opts);
}

/** Python snippet that calls a raw syscall and prints "errno=N" (0 on success). */
export function pySyscall(body: string): string[] {
  return [
    'python3',
    '-c',
    `import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\n${body}\nprint("errno=%d" % (ctypes.get_errno() if r == -1 else 0))`,
  ];
}

/** The cgroups a Ward process made (`ward-<pid>-<n>`), under every controller. */
export function wardCgroupsOf(pid: number = process.pid): string[] {
  const found: string[] = [];
  const name = new RegExp(`^ward-${pid}-\\d+$`);
  const walk = (dir: string, depth: number) => {
    if (depth > 6) return;
    let entries: Dirent[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (name.test(e.name)) found.push(path.join(dir, e.name));
      walk(path.join(dir, e.name), depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 0);
  return found;
}

/** Polls `check` every 20 ms until it holds or `ms` pass; the last answer decides. */
export async function eventually(check: () => boolean, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

/** A seeded PRNG (mulberry32), so a failure can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Calls fn and returns the PolicyError it throws (failing the test if it throws nothing or something else). */
export function policyError(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PolicyError, `expected PolicyError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a PolicyError');
}

/**
 * run() options for a test in a sandbox fixture: the fixture's workspace and environment, no
 * stdin, degraded only where the host has no cgroup, no audit log, records collected into
 * `records`; `extra` adds or overrides.
 */
export function fixtureRunOptions(fx: { ws: string; env: NodeJS.ProcessEnv }, records: RunRecord[], extra: Partial<RunOptions> = {}): RunOptions {
  return { workspace: fx.ws, env: fx.env, stdin: 'ignore', allowDegraded: !hasCgroup, audit: false, onRecord: (r) => records.push(r), ...extra };
}

/**
 * C, for a program a test compiles: `leader_gone()` returns once the calling process's leader
 * thread has exited (a zombie); only then does /proc/PID show nothing of what its other threads
 * hold. No event says so, so it polls the leader's stat. Needs <fcntl.h>, <stdio.h>, <string.h>
 * and <unistd.h>.
 */
export const C_LEADER_GONE = `static void leader_gone(void) {
  char p[64], b[512];
  snprintf(p, sizeof p, "/proc/%d/task/%d/stat", getpid(), getpid());
  for (;;) {
    int fd = open(p, O_RDONLY), n = fd < 0 ? -1 : read(fd, b, sizeof b - 1);
    if (fd >= 0) close(fd);
    if (n <= 0) return;
    b[n] = 0;
    char *e = strrchr(b, ')');
    if (e && (e[2] == 'Z' || e[2] == 'X')) return;
    usleep(1000);
  }
}
`;
