/**
 * Shared helpers for the launcher tests: run the real launcher (and real
 * bwrap) with a status pipe on fd 3, and collect everything it says.
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ensureLauncher, parseLauncherStatus, type LauncherStatus } from '../../src/launcher/launcher.js';

export const BWRAP = '/usr/bin/bwrap';
export const STATUS_FD = 3;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Raw text read from fd 3 until EOF. */
  statusText: string;
  /** ms from spawn to EOF on the status pipe, and to the process exit. */
  statusEofMs: number;
  exitMs: number;
}

export interface RunOptions {
  /** Extra fds for the child from index 4 on (e.g. a seccomp program for bwrap --seccomp 4). */
  extraFds?: number[];
  /** What fd 3 is: a pipe we read (default) or an fd given here. */
  statusFd?: number | 'pipe' | 'ignore';
  uid?: number;
  gid?: number;
  cwd?: string;
  timeoutMs?: number;
}

/** Run argv; resolves when the process has exited and all its output is read. */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('empty argv');
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', opts.statusFd ?? 'pipe', ...(opts.extraFds ?? [])];
  const start = Date.now();
  const child = spawn(file, args, {
    stdio,
    cwd: opts.cwd ?? '/',
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  });
  let stdout = '';
  let stderr = '';
  let statusText = '';
  let statusEofMs = -1;
  let exitMs = -1;
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const status = child.stdio[3];
  if (status && 'setEncoding' in status) {
    const readable = status as NodeJS.ReadableStream;
    readable.setEncoding('utf8');
    readable.on('data', (d: string | Buffer) => (statusText += d.toString()));
    readable.on('end', () => (statusEofMs = Date.now() - start));
  }
  child.on('exit', () => (exitMs = Date.now() - start));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, statusText, statusEofMs, exitMs });
    });
  });
}

export function status(r: RunResult): LauncherStatus {
  return parseLauncherStatus(r.statusText);
}

/** The bwrap command line the tests use, up to and including the '--' before the launcher. */
export function bwrap(extra: string[] = []): string[] {
  return [
    BWRAP,
    '--ro-bind', '/', '/',
    '--dev', '/dev',
    '--proc', '/proc',
    '--tmpfs', '/tmp',
    // The launcher may live under /tmp (a checkout there, or XDG_CACHE_HOME): keep it visible.
    '--ro-bind', dirname(launcher()), dirname(launcher()),
    ...extra,
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    '--cap-drop', 'ALL',
    '--',
  ];
}

/** Landlock grants that let /bin/sh and coreutils run on this Debian (/bin, /lib -> /usr). */
export const SYSTEM_RULES = [
  { path: '/usr', rights: 'rx' },
  { path: '/lib', rights: 'rx' },
  { path: '/lib64', rights: 'rx' },
  { path: '/bin', rights: 'rx' },
  { path: '/dev/null', rights: 'rw' },
];

/** A fresh directory under /tmp (realpath: Landlock rules are on resolved paths). */
export function tempDir(prefix: string): string {
  return realpathSync(mkdtempSync(join(tmpdir(), `ward-launcher-${prefix}-`)));
}

/** The launcher, compiled once per test process. */
export function launcher(): string {
  return ensureLauncher();
}

/**
 * A copy of the launcher that any user can execute (the cache under /root is
 * 0700), for tests that run as an unprivileged user. Returns [dir, path].
 */
export function publicLauncher(): [string, string] {
  const dir = tempDir('public');
  chmodSync(dir, 0o755);
  const path = join(dir, 'ward-launch');
  copyFileSync(launcher(), path);
  chmodSync(path, 0o755);
  return [dir, path];
}

/**
 * A classic BPF seccomp program (x86_64) that fails one system call with
 * `errno` (optionally only when argument `arg.index` has low word
 * `arg.value`) and allows everything else: the way to see the launcher on a
 * kernel without Landlock, or make any of its steps fail, on a kernel that
 * works. For bwrap --seccomp FD.
 */
export function seccompDeny(nr: number, errno: number, arg?: { index: number; value: number }): Buffer {
  const AUDIT_ARCH_X86_64 = 0xc000003e;
  const RET_ERRNO = 0x00050000;
  const RET_ALLOW = 0x7fff0000;
  const LD_ABS = 0x20;
  const JEQ = 0x15;
  const RET = 0x06;
  // Each entry: [code, jt, jf, k]; jf is filled in to jump to the final "allow".
  const body: [number, number, number | 'allow', number][] = [
    [LD_ABS, 0, 0, 4], // seccomp_data.arch
    [JEQ, 0, 'allow', AUDIT_ARCH_X86_64],
    [LD_ABS, 0, 0, 0], // seccomp_data.nr
    [JEQ, 0, 'allow', nr],
    ...(arg
      ? ([
          [LD_ABS, 0, 0, 16 + 8 * arg.index], // low word of args[index]
          [JEQ, 0, 'allow', arg.value],
        ] as [number, number, number | 'allow', number][])
      : []),
    [RET, 0, 0, RET_ERRNO | errno],
    [RET, 0, 0, RET_ALLOW],
  ];
  const allowAt = body.length - 1;
  const buf = Buffer.alloc(body.length * 8);
  body.forEach(([code, jt, jf, k], i) => {
    buf.writeUInt16LE(code, i * 8);
    buf.writeUInt8(jt, i * 8 + 2);
    buf.writeUInt8(jf === 'allow' ? allowAt - i - 1 : jf, i * 8 + 3);
    buf.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return buf;
}

/** landlock_create_ruleset (444) fails with errno: a kernel without Landlock. */
export function seccompDenyLandlock(errno: number): Buffer {
  return seccompDeny(444, errno);
}

/**
 * `ward-launch outer OPTS -- /bin/true` for option checks: fd 5 and 6 are open
 * pipes (an fd "in use", a lifeline), 7 and up are free. Its exit code and stderr.
 */
export async function outerUsage(opts: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(launcher(), ['outer', ...opts, '--', '/bin/true'], { stdio: ['ignore', 'ignore', 'pipe', 'ignore', 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  return { code, stderr };
}
