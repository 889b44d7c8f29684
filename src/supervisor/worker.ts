/**
 * The supervisor loop, in its own worker thread: receive a notification, read what it points
 * at, decide, answer. Everything here is synchronous (koffi sync calls): the thread does
 * nothing else, so blocking in poll() is the idle state, and a notification costs a handful of
 * syscalls with no event-loop turn in between.
 *
 * Start-up (the launcher side is supervise_handshake in ward-launch.c):
 *   load koffi; wait for the run's parameters (one message); load the decision module; make this thread's umask private and drop this thread's
 *   capabilities (see static.ts); send the notify filter to the inner launcher; receive the
 *   listener fd (SCM_RIGHTS); answer 'G'; tell the main thread 'ready'; loop.
 *
 * Answers (never CONTINUE for a decision that rests on memory the sandbox can change):
 *   open, openat, openat2, creat: the supervisor opens the file itself, from the sandbox's
 *     root with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, checks what it actually opened (the
 *     kernel's own path for the fd, in the sandbox's view) against the static policy and the
 *     decision, and injects the fd (SECCOMP_IOCTL_NOTIF_ADDFD with ADDFD_FLAG_SEND), or answers
 *     an errno. A thread flipping the path buffer can change which file is *asked for*, never
 *     which file is *given*: the decision is on the given one.
 *   execve, execveat: an exec cannot be emulated; a refusal is an errno, an allowed exec is
 *     CONTINUE (the kernel then reads the path again: see SECURITY-MODEL.md, supervised mode).
 *     Judged on the program as the kernel finds it for the caller (findProgram) and on each file
 *     the kernel runs for it with no exec of its own: `#!` interpreters, the ELF loader.
 *   unlink, rename, link, mkdir, truncate, chmod, utimensat, setxattr... (filter.ts PATH_OPS):
 *     performed by the supervisor on the resolved names (handlePathOp, handleAttrOp).
 *   ftruncate, fallocate, fcntl F_SETFL (FD_OPS): decided and performed on the caller's own
 *     open file (pidfd_getfd), for append-only files (handleFdOp).
 *   connect: decided blind, CONTINUE when allowed (nothing in memory was decided on).
 *   O_PATH opens: CONTINUE (nothing refuses them; ADDFD cannot inject them).
 *   Opens, writes by path and metadata writes *decided blind*: when the decision function says
 *     its answer is "allowed, and no event" for every file (Decide.anyTarget, on the accesses
 *     the registers show), and no append-only or visible-only entry needs the path, the call is
 *     answered CONTINUE before any memory is read. The kernel then makes it under the static
 *     layers (mounts, Landlock), exactly as an unsupervised run would: a decision that holds for
 *     every path cannot be raced by swapping the path.
 *
 * Fail closed: any unexpected error ends the loop and closes the listener; the kernel then
 * fails every notified syscall (ENOSYS) and the main thread kills the sandbox.
 */
import { pathToFileURL } from 'node:url';
import { isAbsolute } from 'node:path';
import { parentPort } from 'node:worker_threads';
import type { LandlockRule } from '../launcher/launcher.js';
import type { SupervisedSyscall } from './filter.js';
import * as N from './native.js';
import { staticAllows, type Access } from './static.js';
import { elfInterpreter, HEAD_SIZE, scriptInterpreter } from './exec-head.js';
import { cutTcpConnections, killWriters } from './cut.js';
import type { Decide, DeciderContext, DeciderSpec, FileAccess, SupervisedEvent } from './types.js';

export interface WorkerInput {
  sockFd: number;
  program: Uint8Array;
  names: [number, SupervisedSyscall][];
  /** Syscalls asked for (exec may be notified only for bookkeeping). */
  decided: SupervisedSyscall[];
  rules: LandlockRule[] | null;
  /**
   * filesystem.append as paths in the sandbox's view (real paths: binds keep them). A file there
   * is written only through O_APPEND (appendErrno below); nothing else may change it.
   */
  append: string[];
  /** filesystem.visible, real paths: stat shows them; no open but O_PATH, no exec (visibleErrno below). */
  visible: string[];
  /** The identities of the files inside directory entries of `append` and `visible`, read on the host at launch. */
  appendIds: string[];
  visibleIds: string[];
  decider: DeciderSpec;
  /** Int32Array over it: [0] = 1 asks the loop to stop. */
  stop: SharedArrayBuffer;
}

export type WorkerMessage =
  | { type: 'ready'; capsDropped: boolean; syncWakeUp: boolean; waitKillable: boolean; thread: number }
  | { type: 'denial'; event: SupervisedEvent; errno: number; reason: string }
  | { type: 'report'; data: unknown }
  | { type: 'done'; notifications: number; blind: number; reason: string }
  /** The run is over and its fds closed: this thread can take another run. */
  | { type: 'idle' }
  | { type: 'error'; message: string };

const EPERM = 1;
const ENOENT = 2;
const EINTR = 4;
const EACCES = 13;
const EFAULT = 14;
const ENOTDIR = 20;
const EISDIR = 21;
const EINVAL = 22;
const ENAMETOOLONG = 36;
const EOPNOTSUPP = 95;
const ESRCH = 3;
const E2BIG = 7;
const PATH_MAX = 4096;
const EBADF = 9;
const ENOSYS = 38;
const EBUSY = 16;
const EFBIG = 27;
const ELOOP = 40;
const AT_REMOVEDIR = 0x200;
const AT_SYMLINK_FOLLOW = 0x400;
const AT_EMPTY_PATH = 0x1000;
const RWF_NOAPPEND = 0x20;
const FALLOC_FL_KEEP_SIZE = 1;
const F_SETFL = 4;
const BLIND_KIND = new Map<SupervisedSyscall, 'connect'>([['connect', 'connect']]);
const ALL_ACCESSES: readonly FileAccess[] = ['read', 'write', 'append'];
const WRITE_ONLY: readonly FileAccess[] = ['write'];
const EXEC_ONLY: readonly 'exec'[] = ['exec'];
/** The kernel's bound on symlinks in one lookup (MAXSYMLINKS): past it, ELOOP. */
const MAX_SYMLINKS = 40;
/** statfs f_type of procfs: its links lead by who follows them. */
const PROC_SUPER_MAGIC = 0x9fa0;
/** Interpreters judged for one exec: more than the kernel follows (exec_binprm: ELOOP past depth 5). */
const MAX_INTERPRETERS = 8;

/**
 * What an open can do, from its flags register, erring wide: it reads unless O_WRONLY; it
 * writes with O_WRONLY, O_RDWR, O_CREAT or O_TRUNC; with O_APPEND the write is also an append.
 */
function flagAccesses(flags: number): FileAccess[] {
  const mode = flags & N.O_ACCMODE;
  const out: FileAccess[] = [];
  if (mode !== N.O_WRONLY) out.push('read');
  if (mode !== 0 || flags & (N.O_CREAT | N.O_TRUNC)) out.push('write');
  if (flags & N.O_APPEND) out.push('append');
  return out;
}
const PATH_KIND = new Map<SupervisedSyscall, SupervisedEvent['kind']>([
  ['unlink', 'unlink'],
  ['unlinkat', 'unlink'],
  ['rmdir', 'unlink'],
  ['rename', 'rename'],
  ['renameat', 'rename'],
  ['renameat2', 'rename'],
  ['truncate', 'truncate'],
  ['link', 'link'],
  ['linkat', 'link'],
  ['symlink', 'link'],
  ['symlinkat', 'link'],
  ['mkdir', 'mkdir'],
  ['mkdirat', 'mkdir'],
  ['mknod', 'mkdir'],
  ['mknodat', 'mkdir'],
]);
const FD_KIND = new Set<SupervisedSyscall>(['ftruncate', 'fallocate', 'fcntl', 'pwritev2', 'io_setup']);
const ATTR_KIND = new Set<SupervisedSyscall>(['chmod', 'fchmodat', 'fchmodat2', 'chown', 'lchown', 'fchownat', 'utime', 'utimes', 'futimesat', 'utimensat', 'setxattr', 'lsetxattr', 'removexattr', 'lremovexattr', 'setxattrat', 'removexattrat', 'fchmod', 'fchown', 'fsetxattr', 'fremovexattr']);
const CHMOD_CALLS = new Set<SupervisedSyscall>(['chmod', 'fchmodat', 'fchmodat2', 'fchmod']);
/** The metadata calls on an fd (no path argument). */
const ATTR_ON_FD = new Set<SupervisedSyscall>(['fchmod', 'fchown', 'fsetxattr', 'fremovexattr']);
const AT_SYMLINK_NOFOLLOW = 0x100;
const XATTR_SIZE_MAX = 65536;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;
const EEXIST = 17;
const ENXIO = 6;
const EIO = 5;
/** /dev/tty (5:0) in the kernel's dev_t encoding, and the major of the ptys of a devpts. */
const DEV_TTY = 0x500;
const PTS_MAJOR = 136;
/**
 * The /proc/N entries another process may be opened through Ward (othersProcEntry): their open
 * checks nothing, and what their read checks is checked on the reader.
 */
const PROC_OTHERS = new Set(['stat', 'status', 'statm', 'cmdline', 'comm', 'cgroup', 'cpuset', 'oom_score', 'oom_score_adj', 'limits', 'sched', 'schedstat', 'loginuid', 'sessionid', 'mountinfo', 'mounts', 'uid_map', 'gid_map', 'setgroups', 'children', 'task']);
/** Lookups again after an O_EXCL create met a file that appeared meanwhile (handleOpen). */
const MAX_CREATE_TRIES = 8;

const post = (m: WorkerMessage) => parentPort!.postMessage(m);
const parentOf = (p: string): string => p.slice(0, Math.max(1, p.lastIndexOf('/')));
// koffi and libc are loaded before the run is known: a thread started ahead of time (index.ts,
// "spare") has done the slow part when its run arrives.
const n = N.loadNative();
// No signal is meant for this thread; process-directed ones go to Ward's other threads. One that
// landed here while the loop waits in SECCOMP_IOCTL_NOTIF_ADDFD with ADDFD_FLAG_SEND would answer
// the caller's syscall with 0 instead of its fd: the kernel marks the notification replied before
// that wait and does not undo it when a signal interrupts the wait (seen with SIGPROF under
// --cpu-prof; SIGCHLD, which libuv handles, does it too). The restarted ioctl then fails
// EINPROGRESS and the sandbox is killed. Blocked, a signal stays pending and changes nothing.
const signalsBlocked = n.blockThreadSignals();
const threadId = n.gettid();
let input!: WorkerInput;
let listener = -1;

// One run after another: a thread whose run ended cleanly ('done') waits for the next run's
// parameters (index.ts keeps it as the spare), so back-to-back runs do not each pay for a new
// thread (~50 ms on the 2-core test VM). Nothing of a run outlives it here: its fds are closed,
// its decision function and identity sets are made anew. A run that failed ends the thread.
for (;;) {
  input = await new Promise<WorkerInput>((resolve) => parentPort!.once('message', resolve));
  listener = -1;
  let failed = false;
  try {
    await main();
  } catch (e) {
    failed = true;
    post({ type: 'error', message: (e as Error).message });
  } finally {
    // With the listener closed, the kernel fails every notified syscall: never unguarded.
    if (listener >= 0) n.close(listener);
    n.close(input.sockFd);
  }
  if (failed) break;
  post({ type: 'idle' });
}

async function main(): Promise<void> {
  const mod = (await import(isAbsolute(input.decider.module) ? pathToFileURL(input.decider.module).href : input.decider.module)) as { createDecider?: (data: unknown, ctx: DeciderContext) => Decide };
  if (typeof mod.createDecider !== 'function') throw new Error(`the decision module ${input.decider.module} does not export createDecider(data)`);
  // Reports go out on the same port as refusals, so Ward sees them in the order they happened.
  const decide = mod.createDecider(input.decider.data, {
    report: (data) => post({ type: 'report', data }),
    cutConnections: (pid) => cutTcpConnections(n, pid),
    killWriters: (pid, revoked) => killWriters(n, pid, revoked),
  });

  // Created files get the mode the sandboxed program asked for, masked by *its* umask (applied
  // below), not Ward's: a private umask of 0 for this thread only.
  const um = n.privateUmask();
  if (um < 0) throw new Error(`cannot give the supervisor thread its own umask (errno ${-um})`);
  if (signalsBlocked < 0) throw new Error(`cannot block signals on the supervisor thread (errno ${-signalsBlocked}): a signal during an fd injection would corrupt the sandbox's syscall result`);
  let capsDropped = false;
  if (process.getuid?.() === 0) {
    const r = n.dropThreadCaps();
    if (r < 0) throw new Error(`cannot drop the supervisor thread's capabilities (errno ${-r}): refusing to open files for the sandbox with root's rights`);
    capsDropped = true;
  }

  const sent = n.send(input.sockFd, Buffer.from(input.program));
  if (sent < 0) throw new Error(`cannot send the notify filter to the launcher (errno ${-sent}): the sandbox did not start`);
  const got = n.recvFd(input.sockFd);
  if (typeof got === 'number') throw new Error(`the launcher did not pass the seccomp listener (errno ${-got}); its status report says why`);
  listener = got.fd;
  // 'K': the filter has SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (5.19+; ward-launch.c says why).
  const waitKillable = got.byte === 0x4b;
  // Optional (6.6+): the notifying thread hands its CPU to us instead of a plain wake-up.
  // (The flag is the ioctl's value argument, not a pointer.)
  const syncWakeUp = n.ioctlValue(listener, N.NOTIF_SET_FLAGS, N.NOTIF_FD_SYNC_WAKE_UP) === 0;
  const ack = n.send(input.sockFd, Buffer.from('G'));
  if (ack < 0) throw new Error(`cannot release the launcher (errno ${-ack})`);
  post({ type: 'ready', capsDropped, syncWakeUp, waitKillable, thread: threadId });
  loop(decide);
}

function loop(decide: Decide): void {
  const stop = new Int32Array(input.stop);
  const names = new Map(input.names);
  const decided = new Set(input.decided);
  const notif = Buffer.alloc(N.NOTIF_SIZE);
  const resp = Buffer.alloc(N.RESP_SIZE);
  const addfd = Buffer.alloc(N.ADDFD_SIZE);
  const idBuf = Buffer.alloc(8);
  const how = Buffer.alloc(N.OPEN_HOW_SIZE);
  const pathBuf = Buffer.alloc(PATH_MAX);
  const head = Buffer.alloc(HEAD_SIZE);
  const memFds = new Map<number, number>();
  let rootFd = -1;
  let addfdSend = true;
  let count = 0;
  let blindCount = 0;

  const respond = (id: bigint, val: number, error: number, flags: number) => {
    resp.writeBigUInt64LE(id, 0);
    resp.writeBigInt64LE(BigInt(val), 8);
    resp.writeInt32LE(error, 16);
    resp.writeUInt32LE(flags, 20);
    const r = n.ioctl(listener, N.NOTIF_SEND, resp);
    // ENOENT: the caller died (or was interrupted) meanwhile; nothing to answer.
    if (r < 0 && r !== -ENOENT) throw new Error(`SECCOMP_IOCTL_NOTIF_SEND failed (errno ${-r})`);
  };
  const refuse = (id: bigint, errno: number) => respond(id, 0, -errno, 0);

  /**
   * Decided blind (file comment): answers CONTINUE and returns true when the call's answer is
   * "allowed, no event" whatever file it names, from registers alone. Visible-only and
   * append-only entries are decided by path, so while they apply nothing is blind.
   */
  const blind = (id: bigint, name: SupervisedSyscall, accesses: readonly (FileAccess | 'exec')[]): boolean => {
    if (input.visible.length > 0) return false;
    if (input.append.length > 0 && accesses.some((a) => a !== 'read')) return false;
    if (decided.has(name) && decide.anyTarget?.(accesses) !== true) return false;
    blindCount++;
    respond(id, 0, 0, N.USER_NOTIF_FLAG_CONTINUE);
    return true;
  };

  const stillValid = (id: bigint) => {
    idBuf.writeBigUInt64LE(id, 0);
    return n.ioctl(listener, N.NOTIF_ID_VALID, idBuf) === 0;
  };

  const dropMem = (pid: number) => {
    const fd = memFds.get(pid);
    if (fd !== undefined) {
      n.close(fd);
      memFds.delete(pid);
    }
  };
  const memFd = (pid: number): number => {
    let fd = memFds.get(pid);
    if (fd === undefined) {
      fd = n.open(`/proc/${pid}/mem`, N.O_CLOEXEC);
      if (fd < 0) return fd;
      if (memFds.size >= 256) dropMem(memFds.keys().next().value!);
      memFds.set(pid, fd);
    }
    return fd;
  };

  /**
   * The NUL-terminated string at `addr` in the caller's memory, or -errno. Read page by page so
   * a string ending just before an unmapped page is still read. A cached /proc/PID/mem whose
   * process has exec'd or died reads nothing: reopen once.
   */
  const readString = (pid: number, addr: number): string | number => {
    if (addr === 0) return -EFAULT;
    let total = 0;
    let reopened = false;
    while (total < PATH_MAX) {
      const fd = memFd(pid);
      if (fd < 0) return fd;
      const at = addr + total;
      const chunk = Math.min(4096 - (at % 4096), PATH_MAX - total);
      const got = n.pread(fd, pathBuf.subarray(total), chunk, at);
      if (got <= 0) {
        if (!reopened) {
          dropMem(pid);
          reopened = true;
          continue;
        }
        return -EFAULT;
      }
      const nul = pathBuf.indexOf(0, total);
      if (nul >= 0 && nul < total + got) return pathBuf.toString('utf8', 0, nul);
      total += got;
    }
    return -ENAMETOOLONG;
  };

  const readHow = (pid: number, addr: number): boolean => {
    const fd = memFd(pid);
    return fd >= 0 && addr !== 0 && n.pread(fd, how, N.OPEN_HOW_SIZE, addr) === N.OPEN_HOW_SIZE;
  };

  /** Where a relative path starts, in the sandbox's view: the cwd or the directory fd. */
  const basePath = (pid: number, dirfd: number): string | number => {
    const link = n.readlink(dirfd === N.AT_FDCWD ? `/proc/${pid}/cwd` : `/proc/${pid}/fd/${dirfd}`);
    if (typeof link === 'number') return link === -ENOENT && dirfd !== N.AT_FDCWD ? -9 /* EBADF */ : link;
    if (!link.startsWith('/')) return -ENOTDIR; // a pipe, socket or anon inode
    if (link.endsWith(' (deleted)')) return -ENOENT;
    return link;
  };

  /**
   * `asked` as a path in the sandbox's view: a relative one joined to the cwd or the directory
   * fd (basePath); "" is that base itself (execveat with AT_EMPTY_PATH). -errno without a base.
   */
  const absolute = (pid: number, dirfd: number, asked: string): string | number => {
    if (asked.startsWith('/')) return asked;
    const base = basePath(pid, dirfd);
    if (typeof base === 'number') return base;
    return asked === '' ? base : base === '/' ? `/${asked}` : `${base}/${asked}`;
  };

  const openHow = (flags: number, mode: number, resolve: number) => {
    how.writeBigUInt64LE(BigInt(flags >>> 0), 0);
    how.writeBigUInt64LE(BigInt(mode), 8);
    how.writeBigUInt64LE(BigInt(resolve), 16);
    return how;
  };

  /** The sandbox path of a file Ward holds open (the kernel's d_path, relative to the sandbox's root). */
  const fdPath = (fd: number): string | null => {
    const p = n.readlink(`/proc/self/fd/${fd}`);
    return typeof p === 'string' && p.startsWith('/') && !p.endsWith(' (deleted)') ? p : null;
  };

  /** The head of /proc/PID/status (the fields used here are all in it), or null when it cannot be read. */
  const statusOf = (pid: number): string | null => {
    const fd = n.open(`/proc/${pid}/status`, N.O_CLOEXEC);
    if (fd < 0) return null;
    const got = n.pread(fd, pathBuf, PATH_MAX, 0);
    n.close(fd);
    return got > 0 ? pathBuf.toString('latin1', 0, got) : null;
  };

  const umaskOf = (pid: number): number => {
    const m = /Umask:\s*([0-7]+)/.exec(statusOf(pid) ?? '');
    return m ? parseInt(m[1]!, 8) : 0o022;
  };

  /** The caller's thread group and thread ids as the sandbox sees them (its pid namespace). */
  const nsIdsOf = (pid: number): { tgid: number; tid: number } | null => {
    const text = statusOf(pid);
    if (text === null) return null;
    const last = (field: string) => Number(new RegExp(`^${field}:[\\t ]*([\\d\\t ]+)$`, 'm').exec(text)?.[1]?.trim().split(/[\t ]+/).at(-1));
    const tgid = last('NStgid');
    const tid = last('NSpid');
    return Number.isInteger(tgid) && Number.isInteger(tid) ? { tgid, tid } : null;
  };

  /**
   * The names that mean "the caller itself" (/proc/self, /dev/stdin, /dev/fd/N) resolve by who
   * asks; resolved by Ward they would name Ward, which the sandbox's /proc does not know. So
   * they are rewritten to the caller's own pid in the sandbox's pid namespace first.
   */
  const selfPath = (pid: number, full: string): string | null => {
    let p = full;
    const std = /^\/dev\/(stdin|stdout|stderr)$/.exec(p);
    if (std) p = `/proc/self/fd/${['stdin', 'stdout', 'stderr'].indexOf(std[1]!)}`;
    const devfd = /^\/dev\/fd(\/.*)?$/.exec(p);
    if (devfd) p = `/proc/self/fd${devfd[1] ?? ''}`;
    const self = /^\/proc\/(self|thread-self)(\/.*)?$/.exec(p);
    if (!self) return p === full ? null : p;
    const ids = nsIdsOf(pid);
    if (!ids) return null;
    return `/proc/${self[1] === 'self' ? ids.tgid : `${ids.tgid}/task/${ids.tid}`}${self[2] ?? ''}`;
  };

  /**
   * The caller's controlling terminal: tty_nr of /proc/PID/stat (the kernel's dev_t encoding,
   * as fstat's st_rdev), 0 for none, null when it cannot be read.
   */
  const cttyOf = (pid: number): number | null => {
    const fd = n.open(`/proc/${pid}/stat`, N.O_CLOEXEC);
    if (fd < 0) return null;
    const got = n.pread(fd, pathBuf, PATH_MAX, 0);
    n.close(fd);
    if (got <= 0) return null;
    const text = pathBuf.toString('latin1', 0, got);
    // After the command name (which may hold spaces and parentheses): state ppid pgrp session tty_nr.
    const tty = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[4]);
    return Number.isInteger(tty) ? tty : null;
  };

  /**
   * /dev/tty as the kernel opens it for the caller. Its open gives the *opener's* controlling
   * terminal: opened by Ward, it was Ward's, the user's own terminal (the sandbox read keystrokes
   * from it and switched its echo off). The sandbox's processes run in a new session without one,
   * so the answer is ENXIO, as the kernel gives them; a process there that made a pty of its own
   * its terminal (`script`, `ssh -t`, a pty.fork() child) gets that pty, from the sandbox's
   * /dev/pts (its devpts, the only one whose ptys the sandbox can make), checked to be that
   * device. Returns an fd or -errno.
   */
  const callerTty = (pid: number, flags: number): number => {
    const tty = cttyOf(pid);
    if (!tty) return -ENXIO;
    const major = (tty >> 8) & 0xfff;
    const minor = (tty & 0xff) | ((tty >> 12) & 0xfff00);
    if (major !== PTS_MAJOR) return -ENXIO;
    const fd = n.openat2(rootFd, `/dev/pts/${minor}`, openHow(flags, 0, N.RESOLVE_IN_ROOT | N.RESOLVE_NO_MAGICLINKS | N.RESOLVE_NO_SYMLINKS));
    if (fd < 0) return -ENXIO;
    const k = n.fileKind(fd);
    if (k === null || (k.mode & S_IFMT) !== S_IFCHR || k.rdev !== tty) {
      n.close(fd);
      return -ENXIO;
    }
    return fd;
  };

  /**
   * Ward's own open of a name (`fd`, or its -errno) made good for the caller when it was /dev/tty
   * (callerTty): the open succeeded on Ward's terminal, or failed (ENXIO, EIO) for Ward's lack of
   * one. `probe` opens the same name O_PATH (which runs no device open) to tell, after a failure.
   * Any other file: `fd` unchanged.
   */
  const ttyAsCaller = (pid: number, fd: number, probe: () => number, flags: number): number => {
    let k: ReturnType<typeof n.fileKind>;
    if (fd >= 0) k = n.fileKind(fd);
    else if (fd === -ENXIO || fd === -EIO) {
      const p = probe();
      if (p < 0) return fd;
      k = n.fileKind(p);
      n.close(p);
    } else return fd;
    if (k === null || (k.mode & S_IFMT) !== S_IFCHR || k.rdev !== DEV_TTY) return fd;
    if (fd >= 0) n.close(fd);
    return callerTty(pid, flags);
  };

  /**
   * Another process's /proc/N/... (or /proc/N/task/M/...) that the kernel opens only after
   * ptrace_may_access (environ, mem, maps, auxv, fdinfo...): refused, because Ward's open passes
   * that check where the caller's would not. Ward's thread owns the sandbox's user namespace, so
   * the kernel counts it as holding every capability there (CAP_SYS_PTRACE: a non-dumpable
   * process's memory), and it is outside the sandbox's Landlock domain (which keeps the sandbox
   * from tracing bwrap, pid 1). Only the entries whose open checks nothing (what ps and top read;
   * a check at read time is made on the reader, the caller) are opened for it; the caller's own
   * process, which the kernel always lets in, keeps every entry.
   */
  const othersProcEntry = (pid: number, p: string | null): string | null => {
    const m = p === null ? null : /^\/proc\/(\d+)(?:\/task\/\d+(?=\/|$))?(?:\/([^/]+))?/.exec(p);
    if (!m || m[2] === undefined || PROC_OTHERS.has(m[2])) return null;
    const ids = nsIdsOf(pid);
    return ids && (Number(m[1]) === ids.tgid || Number(m[1]) === ids.tid) ? null : m[2];
  };

  const accessOf = (flags: number): Access => {
    if (flags & N.O_PATH) return 'path';
    const acc = flags & N.O_ACCMODE;
    if (acc === N.O_RDWR) return 'read-write';
    if (acc === N.O_WRONLY) return 'write';
    // O_TRUNC cuts the file even when opened read-only: a write, as Landlock counts it (TRUNCATE).
    // O_CREAT on a file that exists is no write: creation is decided on its own path below.
    return flags & N.O_TRUNC ? 'read-write' : 'read';
  };

  /**
   * Append-only files (filesystem.append). The identities ("dev:ino") of the files named there,
   * read once from the sandbox's root: a hard link or a /proc/self/fd reopen names the same file
   * under another path. A file entry is its own bind mount (mounts.ts), so it cannot be unlinked,
   * renamed or replaced (EBUSY) nor linked elsewhere (EXDEV) by the kernel itself.
   */
  /** The "dev:ino" of each path that resolves in the sandbox's root (rootFd must be open). */
  const identitiesOf = (paths: readonly string[]): Set<string> => {
    const ids = new Set<string>();
    for (const p of paths) {
      const fd = n.openat2(rootFd, p, openHow(N.O_PATH | N.O_CLOEXEC, 0, N.RESOLVE_IN_ROOT | N.RESOLVE_NO_MAGICLINKS));
      if (fd < 0) continue;
      const fid = n.fileId(fd);
      if (fid) ids.add(fid);
      n.close(fd);
    }
    return ids;
  };
  /** Is `p` one of `entries` or below one of them? */
  const underAny = (entries: readonly string[], p: string | null | undefined): boolean =>
    !!p && entries.some((e) => p === e || p.startsWith(e.endsWith('/') ? e : `${e}/`));
  /**
   * Does a rename of the directory `p` as a whole (event.tree) move or replace one of `entries`
   * or what is in it? Yes when `p` is an entry, inside one, or above one: `mv cfg c2` takes
   * cfg/vis along, and its files then have paths no entry names.
   */
  const treeTouches = (entries: readonly string[], e: SupervisedEvent): boolean =>
    e.tree === true && [e.path, e.path2].some((p) => !!p && entries.some((x) => underAny([x], p) || underAny([p], x)));
  let appendIds: Set<string> | null = null;
  const appendIdSet = (): Set<string> => (appendIds ??= new Set([...identitiesOf(input.append), ...input.appendIds]));
  const inAppend = (p: string | null | undefined): boolean => underAny(input.append, p);
  const isAppendFile = (p: string | null | undefined, fid: string | null): boolean =>
    input.append.length > 0 && (inAppend(p) || (fid !== null && rootFd >= 0 && appendIdSet().has(fid)));

  /**
   * The append-only verdict on an event: 0 (not an append-only file, or an allowed append),
   * 'append' (an allowed append: Landlock's 'r' rule on it must not refuse it), or an errno.
   * Allowed: reading, and opening for writing with O_APPEND, without O_TRUNC and without
   * O_RDWR (an O_RDWR fd could be mapped MAP_SHARED|PROT_WRITE and overwritten). Refused: every
   * other write, every write by path (unlink, rename, link, truncate, mkdir... on it or inside
   * an append-only directory) and every fd call that could rewrite (handleFdOp).
   *
   * Every other way to rewrite the bytes, and who stops it:
   *   mmap MAP_SHARED|PROT_WRITE      needs an fd open for reading and writing: never given
   *   pwrite / lseek + write          the kernel appends on an O_APPEND fd
   *   pwritev2 RWF_NOAPPEND           EOPNOTSUPP (handleFdOp); Linux AIO: io_setup ENOSYS
   *   io_uring                        refused by the static seccomp filter (io_uring_setup)
   *   copy_file_range, sendfile,      the kernel refuses an O_APPEND destination (EBADF,
   *   splice                          EINVAL)
   *   /proc/self/fd/N, /dev/fd/N      an open like any other (the own-fd path in handleOpen),
   *     reopen, O_PATH then reopen    judged here by identity
   *   openat(O_PATH fd, "")           openat has no AT_EMPTY_PATH: ENOENT
   *   hard link, symlink              linkat: the entry is its own bind (EXDEV) and a write by
   *                                   path (EACCES); a symlink resolves to the file: judged here
   *   unlink / rename over it         its bind is a mount point (EBUSY); EACCES here
   *   chmod, utimes, xattrs           EACCES here (handleAttrOp), by path and by fd
   *   F_SETFL clearing O_APPEND,      EPERM on the caller's own open file (pidfd_getfd,
   *   ftruncate, fallocate            handleFdOp)
   */
  const appendVerdict = (event: SupervisedEvent): number | 'append' => {
    if (input.append.length === 0) return 0;
    const hit = isAppendFile(event.path, event.file) || inAppend(event.path2) || treeTouches(input.append, event);
    if (!hit) return 0;
    if (event.kind === 'open') {
      if (event.access === 'read' || event.access === 'path') return 0;
      if (event.access === 'write' && event.flags & N.O_APPEND && !(event.flags & N.O_TRUNC)) return 'append';
      return EACCES;
    }
    return event.kind === 'exec' ? 0 : EACCES;
  };

  /**
   * Visible-only files (filesystem.visible): their identities, read once like the append-only
   * ones, so a hard link made on the host, a symlink or a /proc/self/fd reopen names the same
   * file. Refused: every open but O_PATH (which gives no access to the contents; its reopen
   * through /proc/self/fd is an open, refused here) and every exec. stat needs no open.
   */
  let visibleIds: Set<string> | null = null;
  const isVisibleFile = (p: string | null, fid: string | null): boolean => {
    if (input.visible.length === 0) return false;
    if (underAny(input.visible, p)) return true;
    if (fid === null || rootFd < 0) return false;
    return (visibleIds ??= new Set([...identitiesOf(input.visible), ...input.visibleIds])).has(fid);
  };

  /** For a refusal's reason: how the kernel would have come to run a file no exec named. */
  const ranBy = (event: SupervisedEvent): string => (event.via ? ` (the ${event.via.as} of ${event.via.file}, which the kernel runs with no exec of its own)` : '');

  /** 0 to go ahead, or the errno to answer: append-only and the static policy first, then the decision function. */
  const judge = (event: SupervisedEvent): number => {
    if (event.kind === 'open' && event.access !== 'path') {
      const entry = othersProcEntry(event.pid, event.path);
      if (entry !== null) {
        post({ type: 'denial', event, errno: EACCES, reason: `another process's /proc ${entry}: the kernel lets only a process that may trace it open that` });
        return EACCES;
      }
    }
    if ((event.kind === 'open' && event.access !== 'path') || event.kind === 'exec') {
      if (isVisibleFile(event.path, event.file)) {
        post({ type: 'denial', event, errno: EACCES, reason: `visible-only (filesystem.visible): it may be listed and stat'ed, never ${event.kind === 'exec' ? 'run' : 'opened'}${ranBy(event)}` });
        return EACCES;
      }
    }
    // A mode change of a visible-only file (by a hard link's name: its own bind is read-only) could
    // give it the execute bit that lets a script's #! line run it, unseen (launch.ts refuses one
    // that has it already).
    if (event.kind === 'attr' && CHMOD_CALLS.has(event.syscall) && isVisibleFile(event.path, event.file)) {
      post({ type: 'denial', event, errno: EACCES, reason: "visible-only (filesystem.visible): its mode cannot be changed (an execute bit would let the kernel run it as a script's interpreter)" });
      return EACCES;
    }
    if (input.visible.length > 0 && treeTouches(input.visible, event)) {
      post({ type: 'denial', event, errno: EACCES, reason: "visible-only (filesystem.visible): a rename would move a visible-only entry or what is in it to a name no entry covers" });
      return EACCES;
    }
    const ap = appendVerdict(event);
    if (typeof ap === 'number' && ap !== 0) {
      post({ type: 'denial', event, errno: ap, reason: `append-only (filesystem.append): ${event.kind === 'open' ? 'only O_APPEND writes, without O_TRUNC or O_RDWR' : `no ${event.kind} of an append-only file${event.tree ? ' or of a directory that holds one' : ''}`}` });
      return ap;
    }
    // Landlock has no right for chmod, chown, utimes or xattrs: those are the mount layer's and the permission bits'.
    const staticPath = event.kind === 'attr' ? null : event.kind === 'open' || event.kind === 'truncate' ? event.path : event.path === null ? null : parentOf(event.path);
    if (ap !== 'append' && staticPath !== null && event.access !== 'exec' && event.access !== 'connect' && !staticAllows(input.rules, staticPath, event.access)) {
      post({ type: 'denial', event, errno: EACCES, reason: 'static policy: no Landlock rule grants it' });
      return EACCES;
    }
    // The second name of a rename or link is made in its own directory: Landlock checks both.
    if (event.path2 && !staticAllows(input.rules, parentOf(event.path2), 'write')) {
      post({ type: 'denial', event, errno: EACCES, reason: 'static policy: no Landlock rule grants it' });
      return EACCES;
    }
    if (!decided.has(event.syscall)) return 0;
    const d = decide(event);
    if ('allow' in d && d.allow === true) return 0;
    const errno = 'errno' in d && Number.isInteger(d.errno) && d.errno > 0 && d.errno < 4096 ? d.errno : EPERM;
    post({ type: 'denial', event, errno, reason: `${('reason' in d && d.reason) || 'refused by the decision function'}${ranBy(event)}` });
    return errno;
  };

  /** Installs `fd` in the caller as its syscall's result; closes our copy. */
  const inject = (id: bigint, fd: number, cloexec: boolean) => {
    addfd.writeBigUInt64LE(id, 0);
    addfd.writeUInt32LE(addfdSend ? N.ADDFD_FLAG_SEND : 0, 8);
    addfd.writeUInt32LE(fd, 12);
    addfd.writeUInt32LE(0, 16);
    addfd.writeUInt32LE(cloexec ? N.O_CLOEXEC : 0, 20);
    let r = n.ioctl(listener, N.NOTIF_ADDFD, addfd);
    // Kernels before 5.14 lack ADDFD_FLAG_SEND (EINVAL): add, then answer with the number.
    if (r === -EINVAL && addfdSend) {
      addfdSend = false;
      addfd.writeUInt32LE(0, 8);
      r = n.ioctl(listener, N.NOTIF_ADDFD, addfd);
    }
    n.close(fd);
    if (r < 0) {
      if (r !== -ENOENT) refuse(id, -r);
      return;
    }
    // With SEND the ioctl returns the caller's new fd and has answered already.
    if (!addfdSend) respond(id, r, 0, 0);
  };

  const openRoot = (pid: number, id: bigint): void => {
    if (rootFd >= 0) return;
    // Every process of the sandbox has the same root (chroot needs a capability nobody there has).
    rootFd = n.open(`/proc/${pid}/root`, N.O_PATH | N.O_DIRECTORY | N.O_CLOEXEC);
    if (rootFd < 0 || !stillValid(id)) {
      const err = rootFd;
      if (rootFd >= 0) n.close(rootFd);
      rootFd = -1;
      throw new Error(`cannot open the sandbox's root through /proc/${pid}/root (errno ${-err})`);
    }
  };

  const handleOpen = (id: bigint, pid: number, name: SupervisedSyscall, args: bigint[]): void => {
    let dirfd = N.AT_FDCWD;
    let pathArg: bigint;
    let flags: number;
    let mode: number;
    let resolve = 0;
    if (name === 'openat' || name === 'openat2') {
      dirfd = Number(BigInt.asIntN(32, args[0]!));
      pathArg = args[1]!;
      if (name === 'openat2') {
        if (args[3]! < BigInt(N.OPEN_HOW_SIZE) || !readHow(pid, Number(args[2]!))) return refuse(id, args[3]! < BigInt(N.OPEN_HOW_SIZE) ? EINVAL : EFAULT);
        flags = Number(how.readBigUInt64LE(0) & 0xffffffffn);
        mode = Number(how.readBigUInt64LE(8) & 0o7777n);
        resolve = Number(how.readBigUInt64LE(16) & 0xffn);
      } else {
        flags = Number(args[2]! & 0xffffffffn);
        mode = Number(args[3]! & 0o7777n);
      }
    } else if (name === 'creat') {
      pathArg = args[0]!;
      flags = N.O_CREAT | N.O_WRONLY | N.O_TRUNC;
      mode = Number(args[1]! & 0o7777n);
    } else {
      pathArg = args[0]!;
      flags = Number(args[1]! & 0xffffffffn);
      mode = Number(args[2]! & 0o7777n);
    }
    // openat2's caller gets openat2's strictness; openat's caller gets openat's leniency.
    if (name !== 'openat2') flags &= N.VALID_OPEN_FLAGS;
    // Decided on the flags, before the path is read (for openat2, on Ward's own copy of them).
    if (flags & N.O_PATH) {
      // O_PATH gives no access to the contents, and no check (static, visible-only, rules)
      // refuses it: nothing to decide. (It also could not be injected: ADDFD refuses O_PATH
      // files, EBADF.) Every use of such an fd that reaches contents is decided again: a
      // /proc/self/fd reopen is an open, execveat(AT_EMPTY_PATH) an exec. But openat2's flags
      // are in memory: a CONTINUE on O_PATH would let a racing thread turn it into any open after
      // the decision, so only a decision that holds for every access may CONTINUE; otherwise
      // ENOSYS, as the static filter answers openat2 (callers fall back to openat).
      if (name !== 'openat2') return respond(id, 0, 0, N.USER_NOTIF_FLAG_CONTINUE);
      return blind(id, name, ALL_ACCESSES) ? undefined : refuse(id, ENOSYS);
    }
    // An unnamed temporary file has no path to decide on: glibc's tmpfile() falls back to a named one.
    if ((flags & N.O_TMPFILE) === N.O_TMPFILE) return refuse(id, EOPNOTSUPP);
    if (name !== 'openat2' && blind(id, name, flagAccesses(flags))) return;
    const asked = readString(pid, Number(pathArg));
    // Check after reading: the pid could have died and been reused while we read its memory.
    if (!stillValid(id)) return;
    if (typeof asked === 'number') return refuse(id, -asked);
    if (asked === '') return refuse(id, ENOENT);
    const abs = absolute(pid, dirfd, asked);
    if (typeof abs === 'number') return refuse(id, -abs);
    let full = abs;
    const rewritten = full.startsWith('/proc/') || full.startsWith('/dev/') ? selfPath(pid, full) : null;
    if (rewritten !== null) full = rewritten;
    // /proc/N/fd/M (what /dev/stdin and /dev/fd/M lead to) is a magic link, refused below.
    // For the caller's *own* descriptors it is emulated as the kernel does it: a reopen of the
    // object the caller already holds, through Ward's view of that descriptor.
    const own = /^\/proc\/(\d+)(?:\/task\/\d+)?\/fd\/(\d+)$/.exec(full);
    if (own && !(flags & N.O_CREAT && flags & N.O_EXCL)) {
      const ids = nsIdsOf(pid);
      if (!ids || Number(own[1]) !== ids.tgid) return refuse(id, EACCES);
      openRoot(pid, id);
      const reopen = (flags & ~(N.O_CREAT | N.O_EXCL | N.O_TRUNC | N.O_CLOEXEC)) | N.O_CLOEXEC | N.O_NONBLOCK | N.O_NOCTTY;
      // An O_PATH fd on /dev/tty (no device open: CONTINUEd) reopened here opens the terminal anew, the opener's.
      const fd = ttyAsCaller(pid, n.open(`/proc/${pid}/fd/${own[2]}`, reopen), () => n.open(`/proc/${pid}/fd/${own[2]}`, N.O_PATH | N.O_CLOEXEC), reopen);
      if (fd < 0 && input.visible.length > 0) {
        // As below for a path: a visible-only file reads EACCES, not the EROFS of its bind.
        const probe = n.open(`/proc/${pid}/fd/${own[2]}`, N.O_PATH | N.O_CLOEXEC);
        const visibleOne = probe >= 0 && isVisibleFile(fdPath(probe), n.fileId(probe));
        if (probe >= 0) n.close(probe);
        if (visibleOne) return refuse(id, EACCES);
      }
      if (fd < 0) return refuse(id, -fd);
      const link = n.readlink(`/proc/self/fd/${fd}`);
      const what = typeof link === 'string' ? link : `fd ${own[2]}`;
      // A pipe, socket or anonymous inode has no path a rule could name: the caller holds it already.
      const errno = judge({ pid, syscall: name, kind: 'open', path: what, access: what.startsWith('/') ? accessOf(flags) : 'path', create: false, flags, file: what.startsWith('/') ? n.fileId(fd) : null });
      if (errno) {
        n.close(fd);
        return refuse(id, errno);
      }
      if (!(flags & N.O_NONBLOCK) && n.setFlags(fd, flags & ~(N.O_NONBLOCK | N.O_CREAT | N.O_EXCL | N.O_TRUNC | N.O_CLOEXEC | N.O_NOCTTY)) < 0) {
        n.close(fd);
        return refuse(id, EACCES);
      }
      return inject(id, fd, (flags & N.O_CLOEXEC) !== 0);
    }
    openRoot(pid, id);
    const cloexec = (flags & N.O_CLOEXEC) !== 0;
    const nonblock = (flags & N.O_NONBLOCK) !== 0;
    const access = accessOf(flags);
    // IN_ROOT: absolute symlinks and `..` stop at the sandbox's root. NO_MAGICLINKS: no
    // /proc/PID/fd/N jumps to files the sandbox cannot name. Plus what openat2's caller asked.
    const resolveFlags = N.RESOLVE_IN_ROOT | N.RESOLVE_NO_MAGICLINKS | (resolve & (N.RESOLVE_NO_SYMLINKS | N.RESOLVE_NO_XDEV));
    // Opened non-blocking (a FIFO must not stall the loop), without O_TRUNC (nothing is cut
    // before the decision) and without O_CREAT (nothing is made before the decision).
    // O_PATH takes only O_DIRECTORY and O_NOFOLLOW beside it: openat ignores the rest, openat2 refuses it (EINVAL).
    const base = flags & N.O_PATH ? (flags & (N.O_PATH | N.O_DIRECTORY | N.O_NOFOLLOW)) | N.O_CLOEXEC : (flags & ~(N.O_CREAT | N.O_EXCL | N.O_TRUNC | N.O_CLOEXEC)) | N.O_CLOEXEC | N.O_NONBLOCK | N.O_NOCTTY;
    let fd = -ENOENT;
    // O_CREAT without O_EXCL opens the file if it exists and creates it otherwise. Ward creates
    // it with O_EXCL whatever the caller asked: a file that appears between the lookup and the
    // create (a racing thread renaming a hard link of a revoked file onto the name) must not be
    // opened as the new, empty file it was judged to be. On EEXIST it is looked up again and
    // judged as the existing file it is (path and identity). Bounded: a name that keeps
    // appearing and vanishing gets EACCES, never an unjudged fd.
    for (let tries = 0; ; tries++) {
      fd = (flags & N.O_CREAT) && (flags & N.O_EXCL) ? -ENOENT : n.openat2(rootFd, full, openHow(base, 0, resolveFlags));
      if (fd !== -ENOENT || !(flags & N.O_CREAT)) break;
      // The file is to be created: decide on its resolved parent plus the new name, then create
      // it relative to that very directory, refusing any symlink in the last step.
      const slash = full.lastIndexOf('/');
      const name0 = full.slice(slash + 1);
      if (name0 === '' || name0 === '.' || name0 === '..') return refuse(id, EISDIR);
      const dir = n.openat2(rootFd, full.slice(0, slash) || '/', openHow(N.O_PATH | N.O_DIRECTORY | N.O_CLOEXEC, 0, resolveFlags));
      if (dir < 0) return refuse(id, -dir);
      const parent = fdPath(dir);
      if (parent === null) {
        n.close(dir);
        return refuse(id, ENOENT);
      }
      const made = parent === '/' ? `/${name0}` : `${parent}/${name0}`;
      const errno = judge({ pid, syscall: name, kind: 'open', path: made, access: access === 'read' ? 'read-write' : access, create: true, flags, file: null });
      if (errno) {
        n.close(dir);
        return refuse(id, errno);
      }
      const um = umaskOf(pid);
      fd = n.openat2(dir, name0, openHow((flags & ~N.O_CLOEXEC) | N.O_EXCL | N.O_CLOEXEC | N.O_NONBLOCK | N.O_NOCTTY, mode & ~um, N.RESOLVE_BENEATH | N.RESOLVE_NO_SYMLINKS | N.RESOLVE_NO_MAGICLINKS));
      const there = fd === -EEXIST ? n.statAt(dir, name0) : null;
      n.close(dir);
      if (fd === -EEXIST && !(flags & N.O_EXCL)) {
        // A symlink there (the lookup found nothing through it): creating through a dangling symlink is refused.
        if (typeof there !== 'number' && there !== null && (there.mode & S_IFMT) === S_IFLNK) return refuse(id, EACCES);
        if (tries < MAX_CREATE_TRIES) continue;
        post({ type: 'denial', event: { pid, syscall: name, kind: 'open', path: made, access, create: false, flags, file: null }, errno: EACCES, reason: `the name appeared and vanished ${MAX_CREATE_TRIES + 1} times while Ward opened it` });
        return refuse(id, EACCES);
      }
      if (fd < 0) return refuse(id, fd === -40 /* ELOOP: a symlink appeared */ ? EACCES : -fd);
      if (!nonblock && n.setFlags(fd, flags & ~(N.O_NONBLOCK | N.O_CREAT | N.O_EXCL | N.O_TRUNC | N.O_CLOEXEC | N.O_NOCTTY)) < 0) {
        n.close(fd);
        return refuse(id, EACCES);
      }
      return inject(id, fd, cloexec);
    }
    fd = ttyAsCaller(pid, fd, () => n.openat2(rootFd, full, openHow(N.O_PATH | N.O_CLOEXEC | (flags & N.O_NOFOLLOW), 0, resolveFlags)), base);
    let target: string | null;
    if (fd >= 0) {
      target = fdPath(fd);
      if (target === null) {
        n.close(fd);
        return refuse(id, EACCES);
      }
    } else {
      // A visible-only file is refused as such (EACCES) even when Ward's own open failed for
      // another reason first (EROFS: its bind is read-only), so every open of it reads the same.
      if (input.visible.length > 0 && !(flags & N.O_PATH)) {
        const probe = n.openat2(rootFd, full, openHow(N.O_PATH | N.O_CLOEXEC | (flags & N.O_NOFOLLOW), 0, resolveFlags));
        if (probe >= 0) {
          const seen = fdPath(probe);
          const fid = n.fileId(probe);
          n.close(probe);
          if (isVisibleFile(seen, fid)) {
            post({ type: 'denial', event: { pid, syscall: name, kind: 'open', path: seen, access, create: false, flags, file: fid }, errno: EACCES, reason: "visible-only (filesystem.visible): it may be listed and stat'ed, never opened" });
            return refuse(id, EACCES);
          }
        }
      }
      return refuse(id, -fd);
    }
    const errno = judge({ pid, syscall: name, kind: 'open', path: target, access, create: false, flags, file: n.fileId(fd) });
    if (errno) {
      n.close(fd);
      return refuse(id, errno);
    }
    if (flags & N.O_TRUNC && (access === 'write' || access === 'read-write')) {
      const t = n.ftruncate(fd);
      // ftruncate on a FIFO or tty fails; open(O_TRUNC) ignores those, so do we.
      if (t < 0 && t !== -EINVAL) {
        n.close(fd);
        return refuse(id, -t);
      }
    }
    // Back to the blocking mode the program asked for (F_SETFL keeps the access mode).
    if (!nonblock && !(flags & N.O_PATH) && n.setFlags(fd, flags & ~(N.O_NONBLOCK | N.O_CREAT | N.O_EXCL | N.O_TRUNC | N.O_CLOEXEC | N.O_NOCTTY)) < 0) {
      n.close(fd);
      return refuse(id, EACCES);
    }
    inject(id, fd, cloexec);
  };

  /**
   * Where an exec's program is: an O_PATH fd Ward holds on it, with its path in the sandbox's
   * view; or the errno the kernel's own lookup gives too (a missing name: a shell then tries the
   * next PATH entry); or, in `why`, a way the kernel would go for the caller that Ward cannot follow.
   */
  type Found = { fd: number; path: string } | { errno: number } | { why: string };

  /**
   * The program an exec names, looked up the way the kernel looks it up for the caller: one name
   * at a time from the sandbox's root, a symlink by its text (a relative one from where it lies,
   * an absolute one from the sandbox's root), `..` on the real path walked so far. A lookup made
   * by Ward answers differently where the answer depends on who looks, so those names are
   * followed by hand: /proc/self and /proc/thread-self are the caller (Ward is no process of the
   * sandbox's pid namespace: its own lookup gives ENOENT), and the caller's own /proc/N/root, cwd,
   * exe and fd/M (magic links: openat2 from Ward refuses them, ELOOP) lead where they lead for
   * the caller, read from Ward's /proc of that process. Before, such a name was judged as the
   * string it was and CONTINUEd, and the kernel followed it: /proc/self/root/usr/bin/perl,
   * /proc/self/cwd/perl and /dev/fd/3/perl ran a revoked perl, and `after: exec` never saw git.
   * Any other link on a procfs (another process's, ns/, map_files/) is `why`, as is a name that is
   * not UTF-8 (Ward would look up another name than the kernel).
   */
  const findProgram = (pid: number, full: string): Found => {
    if (full.includes('\uFFFD')) return { why: `${full} is not UTF-8: Ward cannot look up the name the kernel will` };
    let ids: { tgid: number; tid: number } | null = null;
    const todo = full.split('/').reverse();
    let dir = '/';
    let links = 0;
    while (todo.length > 0) {
      const name = todo.pop()!;
      if (name === '' || name === '.') continue;
      if (name === '..') {
        dir = parentOf(dir);
        continue;
      }
      if (dir === '/proc' && (name === 'self' || name === 'thread-self')) {
        ids ??= nsIdsOf(pid);
        if (!ids) return { why: `cannot read who the caller is (/proc/${pid}/status) to follow /proc/${name}` };
        dir = name === 'self' ? `/proc/${ids.tgid}` : `/proc/${ids.tgid}/task/${ids.tid}`;
        continue;
      }
      const last = todo.every((x) => x === '' || x === '.');
      const proc = /^\/proc\/(\d+)(?:\/task\/(\d+))?(\/fd)?$/.exec(dir);
      if (proc && (proc[3] ? /^\d+$/.test(name) : name === 'root' || name === 'cwd' || name === 'exe')) {
        if (++links > MAX_SYMLINKS) return { errno: ELOOP };
        ids ??= nsIdsOf(pid);
        // The caller's process (its leader, where the kernel's /proc/TGID leads) or its own thread, in Ward's /proc.
        const task = !ids || Number(proc[1]) !== ids.tgid ? null : proc[2] === undefined ? tgidOf(pid) : Number(proc[2]) === ids.tid ? pid : null;
        if (task === null || task < 0) return { why: `${dir}/${name} is a link of another process (or thread) than the caller's` };
        // Every process of the sandbox has its root (openRoot).
        if (name === 'root') {
          dir = '/';
          continue;
        }
        const link = `/proc/${task}/${proc[3] ? `fd/${name}` : name}`;
        if (last) {
          // The very file the caller's link leads to: Ward opens the caller's own link, no name is looked up.
          const fd = n.open(link, N.O_PATH | N.O_CLOEXEC);
          return fd < 0 ? { errno: -fd } : { fd, path: fdPath(fd) ?? full };
        }
        const target = n.readlink(link);
        if (typeof target === 'number') return { errno: -target };
        if (!target.startsWith('/')) return { errno: ENOTDIR }; // a pipe, socket or anonymous inode
        if (target.endsWith(' (deleted)')) return { errno: ENOENT };
        dir = target;
        continue;
      }
      const next = dir === '/' ? `/${name}` : `${dir}/${name}`;
      // `dir` has no symlink in it: one found there now was put there since it was walked.
      const fd = n.openat2(rootFd, next, openHow(N.O_PATH | N.O_NOFOLLOW | N.O_CLOEXEC, 0, N.RESOLVE_IN_ROOT | N.RESOLVE_NO_SYMLINKS | N.RESOLVE_NO_MAGICLINKS));
      if (fd === -ELOOP) return { why: `${dir} changed while Ward looked ${full} up` };
      if (fd < 0) return { errno: -fd };
      const kind = n.fileKind(fd);
      if (kind !== null && (kind.mode & S_IFMT) === S_IFLNK) {
        const text = n.fsType(fd) === PROC_SUPER_MAGIC ? null : n.readlinkFd(fd);
        n.close(fd);
        if (text === null) return { why: `${next} is a link in /proc that leads by who follows it` };
        if (typeof text === 'number') return { errno: -text };
        if (text === '') return { errno: ENOENT };
        if (text.includes('\uFFFD')) return { why: `the symlink ${next} is not UTF-8: Ward cannot follow it as the kernel will` };
        if (++links > MAX_SYMLINKS) return { errno: ELOOP };
        todo.push(...text.split('/').reverse());
        if (text.startsWith('/')) dir = '/';
        continue;
      }
      if (kind === null) {
        n.close(fd);
        return { why: `cannot stat ${next}` };
      }
      if (last) return { fd, path: fdPath(fd) ?? next };
      n.close(fd);
      dir = next;
    }
    const fd = n.openat2(rootFd, dir, openHow(N.O_PATH | N.O_CLOEXEC, 0, N.RESOLVE_IN_ROOT | N.RESOLVE_NO_SYMLINKS | N.RESOLVE_NO_MAGICLINKS));
    return fd < 0 ? { errno: -fd } : { fd, path: fdPath(fd) ?? dir };
  };

  /**
   * What the kernel runs next when it execs the file `fd` is, with no exec call of the caller's:
   * the interpreter its `#!` line names, or its dynamic loader (exec-head.ts); null when neither,
   * or when the kernel will refuse the file (it then runs nothing). Read from the file Ward found,
   * through Ward's own fd: the name is not looked up again. A string: why it cannot be told (a
   * file Ward cannot read: the kernel needs only the execute bit to run it).
   */
  const nextProgram = (fd: number): { name: string; as: 'interpreter' | 'loader' } | null | string => {
    const kind = n.fileKind(fd);
    if (kind === null) return 'it cannot be stat\'ed';
    // The kernel execs regular files only (EACCES).
    if ((kind.mode & S_IFMT) !== S_IFREG) return null;
    const rfd = n.open(`/proc/self/fd/${fd}`, N.O_CLOEXEC | N.O_NOCTTY | N.O_NONBLOCK);
    if (rfd < 0) return `Ward cannot read it (errno ${-rfd}) to see what it runs`;
    try {
      head.fill(0);
      const got = n.pread(rfd, head, HEAD_SIZE, 0);
      if (got < 0) return `Ward cannot read it (errno ${-got}) to see what it runs`;
      const read = (len: number, offset: number): Buffer | null => {
        const b = Buffer.alloc(len);
        return n.pread(rfd, b, len, offset) === len ? b : null;
      };
      const script = scriptInterpreter(head);
      const found = script ? { bytes: script, as: 'interpreter' as const } : (() => {
        const loader = elfInterpreter(head, read);
        return loader ? { bytes: loader, as: 'loader' as const } : null;
      })();
      if (found === null) return null;
      const name = found.bytes.toString('utf8');
      if (!Buffer.from(name, 'utf8').equals(found.bytes)) return `its ${found.as}'s name is not UTF-8: Ward cannot look up the name the kernel will`;
      return { name, as: found.as };
    } finally {
      n.close(rfd);
    }
  };

  /**
   * An exec, judged on every file the kernel will run for it: the program it names, then, while
   * that is a script, the interpreter its `#!` line names (the kernel's own exec of it: before,
   * an executable `#!/usr/bin/python3` script ran a revoked python, and was never an `after:
   * exec` event of it), up to the kernel's depth, then the dynamic loader of the ELF program at
   * the end. Each file is judged as found by Ward (findProgram) and read through Ward's fd.
   * Events of the files judged before one that is refused stay recorded (rules only revoke).
   */
  const handleExec = (id: bigint, pid: number, name: SupervisedSyscall, args: bigint[]): void => {
    // The process's memory is about to be replaced: the cached handle would read the old one.
    dropMem(pid);
    if (!decided.has(name)) return respond(id, 0, 0, N.USER_NOTIF_FLAG_CONTINUE);
    // No rule waits for an exec, none revoked one, no visible-only entry: any program may run and none is an event.
    if (blind(id, name, EXEC_ONLY)) return;
    const dirfd = name === 'execveat' ? Number(BigInt.asIntN(32, args[0]!)) : N.AT_FDCWD;
    const asked = readString(pid, Number(name === 'execveat' ? args[1]! : args[0]!));
    if (!stillValid(id)) return;
    if (typeof asked === 'number') return refuse(id, -asked);
    const emptyPath = name === 'execveat' && (Number(args[4]! & 0xffffffffn) & AT_EMPTY_PATH) !== 0;
    if (asked === '' && !emptyPath) return refuse(id, ENOENT);
    // execveat(fd, "", AT_EMPTY_PATH) runs the file the fd is: the caller's own link to it, not its name.
    const full = asked === '' && dirfd !== N.AT_FDCWD ? `/proc/self/fd/${dirfd}` : absolute(pid, dirfd, asked);
    if (typeof full === 'number') return refuse(id, -full);
    openRoot(pid, id);
    const unfollowed = (path: string, via: SupervisedEvent['via'], why: string) => {
      const event: SupervisedEvent = { pid, syscall: name, kind: 'exec', path, access: 'exec', create: false, flags: 0, file: null, ...(via ? { via } : {}) };
      post({ type: 'denial', event, errno: EACCES, reason: `${why}; refused while an exec rule or a visible-only file could apply to what it runs` });
      refuse(id, EACCES);
    };
    let found = findProgram(pid, full);
    let asName = full;
    let via: SupervisedEvent['via'];
    for (let depth = 0; ; depth++) {
      if ('why' in found) return unfollowed(asName, via, found.why);
      // The kernel's lookup fails alike (answered here, so a name made meanwhile cannot run unjudged).
      if ('errno' in found) return refuse(id, found.errno);
      const fd = found.fd;
      const errno = judge({ pid, syscall: name, kind: 'exec', path: found.path, access: 'exec', create: false, flags: 0, file: n.fileId(fd), ...(via ? { via } : {}) });
      // The loader is where the kernel stops: it runs no PT_INTERP of the loader's.
      const next = errno || via?.as === 'loader' ? null : depth >= MAX_INTERPRETERS ? 'more interpreters than the kernel follows' : nextProgram(fd);
      n.close(fd);
      if (errno) return refuse(id, errno);
      if (next === null) break;
      if (typeof next === 'string') return unfollowed(found.path, via, `what ${found.path} runs cannot be told: ${next}`);
      const abs = absolute(pid, N.AT_FDCWD, next.name);
      if (typeof abs === 'number') return refuse(id, -abs);
      via = { file: found.path, as: next.as };
      asName = abs;
      found = findProgram(pid, abs);
    }
    // Not a decision on memory we trust (see the file comment): the documented exec gap.
    respond(id, 0, 0, N.USER_NOTIF_FLAG_CONTINUE);
  };

  /**
   * connect, unlink, rename...: decided without reading memory (filter.ts, BLIND). An allowance
   * is CONTINUE: the kernel then does exactly what the program asked, which the decision did not
   * look at, so there is nothing a racing thread could swap under it.
   */
  const handleBlind = (id: bigint, pid: number, name: SupervisedSyscall): void => {
    const kind = BLIND_KIND.get(name)!;
    const errno = judge({ pid, syscall: name, kind, path: null, access: kind === 'connect' ? 'connect' : 'write', create: false, flags: 0, file: null });
    if (errno) return refuse(id, errno);
    respond(id, 0, 0, N.USER_NOTIF_FLAG_CONTINUE);
  };

  /** The caller's thread group leader in Ward's pid namespace (fds belong to the process). */
  const tgidOf = (pid: number): number => {
    const m = /^Tgid:\s*(\d+)$/m.exec(statusOf(pid) ?? '');
    return m ? Number(m[1]) : -ESRCH;
  };

  /** RLIMIT_FSIZE of the caller (bytes), null when unlimited: a call Ward performs for it must not lift it. */
  const fsizeLimit = (pid: number): bigint | null => {
    const fd = n.open(`/proc/${pid}/limits`, N.O_CLOEXEC);
    if (fd < 0) return 0n; // unreadable: allow nothing to grow
    const got = n.pread(fd, pathBuf, PATH_MAX, 0);
    n.close(fd);
    const m = got > 0 ? /^Max file size\s+(\S+)/m.exec(pathBuf.toString('latin1', 0, got)) : null;
    if (!m) return 0n;
    return m[1] === 'unlimited' ? null : BigInt(m[1]!);
  };

  /** truncate/ftruncate performed by Ward on `fd` for the caller, within the caller's RLIMIT_FSIZE, and answered. */
  const truncateFor = (id: bigint, pid: number, fd: number, length: bigint): void => {
    if (length < 0n) return refuse(id, EINVAL);
    const limit = fsizeLimit(pid);
    if (limit !== null && length > limit) return refuse(id, EFBIG);
    const r = n.ftruncateTo(fd, length);
    return r < 0 ? refuse(id, -r) : respond(id, 0, 0, 0);
  };

  /**
   * Our own fd for the caller's fd `fd`: the same open file description (pidfd_getfd), so the
   * decision and the operation are on one file whatever another thread does to the fd table
   * meanwhile. -errno when it cannot be had (EBADF: no such fd).
   */
  const callerFile = (id: bigint, pid: number, fd: number): number => {
    const tgid = tgidOf(pid);
    if (tgid < 0) return tgid;
    const pidfd = n.pidfdOpen(tgid);
    if (pidfd < 0) return pidfd;
    // The notification still pending means the thread, so its process, is the one that asked.
    if (!stillValid(id)) {
      n.close(pidfd);
      return -ENOENT;
    }
    const got = fd < 0 ? -EBADF : n.pidfdGetfd(pidfd, fd);
    n.close(pidfd);
    return got;
  };

  /**
   * ftruncate, fallocate, fcntl(F_SETFL), pwritev2, io_setup: supervised only when the policy has
   * append-only files. Decided on the caller's open file (callerFile) and performed by Ward on it:
   *   fcntl F_SETFL   refused (EPERM, as for a chattr +a file) when it would clear O_APPEND on an
   *                   append-only file; otherwise Ward sets the flags on the shared description;
   *   ftruncate       refused on an append-only file; otherwise performed (within the caller's
   *   fallocate       RLIMIT_FSIZE: EFBIG beyond it, without the kernel's SIGXFSZ);
   *   pwritev2        RWF_NOAPPEND refused (EOPNOTSUPP, everywhere: deciding which fd it writes
   *                   would need the write performed by Ward); otherwise CONTINUE, a decision on
   *                   a register only;
   *   io_setup        refused (ENOSYS, "no Linux AIO"): an AIO request carries RWF_NOAPPEND in
   *                   memory submitted later, out of the supervisor's sight.
   */
  const handleFdOp = (id: bigint, pid: number, name: SupervisedSyscall, args: bigint[]): void => {
    const ev = (path: string | null, file: string | null): SupervisedEvent => ({ pid, syscall: name, kind: 'fd', path, access: 'write', create: false, flags: 0, file });
    if (name === 'io_setup') {
      post({ type: 'denial', event: ev(null, null), errno: ENOSYS, reason: 'append-only files are enforced: Linux AIO (io_setup) could write past O_APPEND (RWF_NOAPPEND)' });
      return refuse(id, ENOSYS);
    }
    if (name === 'pwritev2') {
      if (Number(args[5]! & 0xffffffffn) & RWF_NOAPPEND) {
        post({ type: 'denial', event: ev(null, null), errno: EOPNOTSUPP, reason: 'append-only files are enforced: pwritev2 with RWF_NOAPPEND is refused' });
        return refuse(id, EOPNOTSUPP);
      }
      return respond(id, 0, 0, N.USER_NOTIF_FLAG_CONTINUE);
    }
    // Another fcntl command than F_SETFL: decided on registers only, so CONTINUE is safe.
    if (name === 'fcntl' && Number(args[1]! & 0xffffffffn) !== F_SETFL) return respond(id, 0, 0, N.USER_NOTIF_FLAG_CONTINUE);
    const ours = callerFile(id, pid, Number(BigInt.asIntN(32, args[0]!)));
    if (ours < 0) return ours === -ENOENT ? undefined : refuse(id, -ours);
    try {
      openRoot(pid, id);
      const path = fdPath(ours);
      const file = n.fileId(ours);
      const append = isAppendFile(path, file);
      if (name === 'fcntl') {
        const flags = Number(args[2]! & 0xffffffffn);
        if (append && !(flags & N.O_APPEND)) {
          post({ type: 'denial', event: { ...ev(path, file), flags }, errno: EPERM, reason: 'append-only (filesystem.append): O_APPEND cannot be cleared' });
          return refuse(id, EPERM);
        }
        const r = n.setFlags(ours, flags);
        return r < 0 ? refuse(id, -r) : respond(id, 0, 0, 0);
      }
      if (append) {
        post({ type: 'denial', event: ev(path, file), errno: EPERM, reason: `append-only (filesystem.append): no ${name}` });
        return refuse(id, EPERM);
      }
      if (name === 'ftruncate') return truncateFor(id, pid, ours, BigInt.asIntN(64, args[1]!));
      const limit = fsizeLimit(pid);
      const mode = Number(args[1]! & 0xffffffffn);
      const offset = BigInt.asIntN(64, args[2]!);
      const len = BigInt.asIntN(64, args[3]!);
      if (limit !== null && !(mode & FALLOC_FL_KEEP_SIZE) && offset + len > limit) return refuse(id, EFBIG);
      const r = n.fallocate(ours, mode, offset, len);
      return r < 0 ? refuse(id, -r) : respond(id, 0, 0, 0);
    } finally {
      n.close(ours);
    }
  };

  /**
   * A name resolved the way the kernel resolves the last component of an unlink, rename, mkdir...:
   * its parent directory opened beneath the sandbox's root (RESOLVE_IN_ROOT: symlinks and `..`
   * stay inside; RESOLVE_NO_MAGICLINKS: no /proc/PID/fd jumps), the last component not followed.
   * The caller must close `dir`.
   */
  const resolveName = (pid: number, id: bigint, dirfd: number, asked: string): { dir: number; name: string; path: string } | number => {
    if (asked === '') return -ENOENT;
    const full = absolute(pid, dirfd, asked);
    if (typeof full === 'number') return full;
    const trimmed = full.replace(/\/+$/, '');
    if (trimmed === '') return -EBUSY; // the root itself
    const slash = trimmed.lastIndexOf('/');
    const name = trimmed.slice(slash + 1);
    if (name === '.' || name === '..') return -EINVAL;
    openRoot(pid, id);
    const dir = n.openat2(rootFd, trimmed.slice(0, slash) || '/', openHow(N.O_PATH | N.O_DIRECTORY | N.O_CLOEXEC, 0, N.RESOLVE_IN_ROOT | N.RESOLVE_NO_MAGICLINKS));
    if (dir < 0) return dir;
    const parent = fdPath(dir);
    if (parent === null) {
      n.close(dir);
      return -ENOENT;
    }
    return { dir, name, path: parent === '/' ? `/${name}` : `${parent}/${name}` };
  };

  /**
   * unlink, rmdir, rename, link, symlink, mkdir, mknod and truncate by path (filter.ts PATH_OPS):
   * performed by Ward, never CONTINUE. The names are resolved (resolveName), the decision is on
   * the resolved paths (append-only, the static policy, the rules), and the call is made
   * relative to the very directory fds the decision was on, so a racing thread that swaps the
   * path buffer or a symlink in the parent chain changes nothing the decision saw. The kernel
   * still applies everything else to Ward's call: the sandbox's mounts (read-only binds: EROFS;
   * a mount point: EBUSY; across binds: EXDEV) and permission bits (the thread has no
   * capabilities).
   */
  const handlePathOp = (id: bigint, pid: number, name: SupervisedSyscall, args: bigint[]): void => {
    if (blind(id, name, WRITE_ONLY)) return;
    const kind = PATH_KIND.get(name)!;
    const a = (i: number) => args[i]!;
    const fdArg = (i: number) => Number(BigInt.asIntN(32, a(i)));
    // [dirfd, path pointer] of the first and second names, the symlink text, flags, mode.
    let first: [number, bigint];
    let second: [number, bigint] | null = null;
    let text: bigint | null = null;
    let flags = 0;
    let mode = 0;
    let dev = 0n;
    switch (name) {
      case 'unlink': first = [N.AT_FDCWD, a(0)]; break;
      case 'rmdir': first = [N.AT_FDCWD, a(0)]; flags = AT_REMOVEDIR; break;
      case 'unlinkat': first = [fdArg(0), a(1)]; flags = Number(a(2) & 0xffffffffn); break;
      case 'rename': case 'link': first = [N.AT_FDCWD, a(0)]; second = [N.AT_FDCWD, a(1)]; break;
      case 'renameat': first = [fdArg(0), a(1)]; second = [fdArg(2), a(3)]; break;
      case 'renameat2': case 'linkat': first = [fdArg(0), a(1)]; second = [fdArg(2), a(3)]; flags = Number(a(4) & 0xffffffffn); break;
      case 'symlink': text = a(0); first = [N.AT_FDCWD, a(1)]; break;
      case 'symlinkat': text = a(0); first = [fdArg(1), a(2)]; break;
      case 'mkdir': first = [N.AT_FDCWD, a(0)]; mode = Number(a(1) & 0o7777n); break;
      case 'mkdirat': first = [fdArg(0), a(1)]; mode = Number(a(2) & 0o7777n); break;
      case 'mknod': first = [N.AT_FDCWD, a(0)]; mode = Number(a(1) & 0xffffffffn); dev = a(2); break;
      case 'mknodat': first = [fdArg(0), a(1)]; mode = Number(a(2) & 0xffffffffn); dev = a(3); break;
      default: first = [N.AT_FDCWD, a(0)]; break; // truncate
    }
    const s1 = readString(pid, Number(first[1]));
    const s2 = second ? readString(pid, Number(second[1])) : null;
    const st = text !== null ? readString(pid, Number(text)) : null;
    if (!stillValid(id)) return;
    for (const v of [s1, s2, st]) if (typeof v === 'number') return refuse(id, -v);
    if (name === 'linkat' && flags & AT_EMPTY_PATH) return refuse(id, ENOENT); // needs CAP_DAC_READ_SEARCH, which nothing in the sandbox has
    if ((name === 'unlinkat' && flags & ~AT_REMOVEDIR) || (name === 'linkat' && flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH))) return refuse(id, EINVAL);

    if (name === 'truncate') {
      if (s1 === '') return refuse(id, ENOENT);
      const full = absolute(pid, N.AT_FDCWD, s1 as string);
      if (typeof full === 'number') return refuse(id, -full);
      openRoot(pid, id);
      const fd = n.openat2(rootFd, full, openHow(N.O_WRONLY | N.O_NONBLOCK | N.O_NOCTTY | N.O_CLOEXEC, 0, N.RESOLVE_IN_ROOT | N.RESOLVE_NO_MAGICLINKS));
      if (fd < 0) return refuse(id, fd === -6 /* ENXIO: a FIFO */ ? EINVAL : -fd);
      try {
        const path = fdPath(fd);
        if (path === null) return refuse(id, EACCES);
        const errno = judge({ pid, syscall: name, kind, path, access: 'write', create: false, flags: 0, file: n.fileId(fd) });
        if (errno) return refuse(id, errno);
        return truncateFor(id, pid, fd, BigInt.asIntN(64, a(1)));
      } finally {
        n.close(fd);
      }
    }

    const r1 = resolveName(pid, id, first[0], s1 as string);
    if (typeof r1 === 'number') return refuse(id, -r1);
    const r2 = second ? resolveName(pid, id, second[0], s2 as string) : null;
    // linkat(AT_SYMLINK_FOLLOW) links the file a last symlink names, not the symlink: that file
    // is what is judged (its path and identity), held as an O_PATH fd opened IN_ROOT, and that
    // very inode is linked, through Ward's own /proc/self/fd/N.
    let followed = -1;
    try {
      if (typeof r2 === 'number') return refuse(id, -r2);
      if (name === 'linkat' && flags & AT_SYMLINK_FOLLOW) {
        const full = absolute(pid, first[0], s1 as string);
        if (typeof full === 'number') return refuse(id, -full);
        followed = n.openat2(rootFd, full, openHow(N.O_PATH | N.O_CLOEXEC, 0, N.RESOLVE_IN_ROOT | N.RESOLVE_NO_MAGICLINKS));
        if (followed < 0) return refuse(id, -followed);
      }
      const source = followed >= 0 ? fdPath(followed) : r1.path;
      if (source === null) return refuse(id, ENOENT);
      const existing = followed >= 0 ? null : n.statAt(r1.dir, r1.name);
      const file = followed >= 0 ? n.fileId(followed) : typeof existing === 'number' || existing === null ? null : existing.id;
      // A rename moves what its old name holds, and replaces (or, exchanging, moves) what its new
      // name holds: when either is a directory, both names stand for their whole trees
      // (`mv proj p2` moves proj/src/main.c). Decided on the types seen here, which a racing
      // thread cannot change in a way that matters before renameat2 below: only a rename can put
      // a directory that holds anything at a name, and every rename is performed by this one
      // thread (an unlink and a mkdir could put an empty directory there, which carries nothing).
      const isDir = (st: ReturnType<typeof n.statAt>) => typeof st !== 'number' && (st.mode & S_IFMT) === S_IFDIR;
      const tree = kind === 'rename' && r2 !== null && existing !== null && (isDir(existing) || isDir(n.statAt(r2.dir, r2.name)));
      const errno = judge({ pid, syscall: name, kind, path: source, path2: r2?.path ?? null, access: 'write', create: kind === 'mkdir' || kind === 'link', flags, file, ...(tree ? { tree } : {}) });
      if (errno) return refuse(id, errno);
      let r: number;
      const um = kind === 'mkdir' ? umaskOf(pid) : 0;
      switch (name) {
        case 'unlink': case 'rmdir': case 'unlinkat': r = n.unlinkat(r1.dir, r1.name, flags & AT_REMOVEDIR); break;
        case 'rename': case 'renameat': case 'renameat2': r = n.renameat2(r1.dir, r1.name, r2!.dir, r2!.name, flags); break;
        case 'link': case 'linkat': r = followed >= 0 ? n.linkat(N.AT_FDCWD, `/proc/self/fd/${followed}`, r2!.dir, r2!.name, AT_SYMLINK_FOLLOW) : n.linkat(r1.dir, r1.name, r2!.dir, r2!.name, 0); break;
        case 'symlink': case 'symlinkat': r = n.symlinkat(st as string, r1.dir, r1.name); break;
        case 'mkdir': case 'mkdirat': r = n.mkdirat(r1.dir, r1.name, mode & ~um); break;
        default: r = n.mknodat(r1.dir, r1.name, (mode & ~0o7777) | (mode & 0o7777 & ~um), dev); break;
      }
      return r < 0 ? refuse(id, r === -ELOOP ? ELOOP : -r) : respond(id, 0, 0, 0);
    } finally {
      n.close(r1.dir);
      if (r2 && typeof r2 !== 'number') n.close(r2.dir);
      if (followed >= 0) n.close(followed);
    }
  };

  /** `len` bytes of the caller's memory at `addr`, or -errno. */
  const readBytes = (pid: number, addr: number, len: number): Buffer | number => {
    if (addr === 0) return -EFAULT;
    const fd = memFd(pid);
    if (fd < 0) return fd;
    const buf = Buffer.alloc(len);
    return len === 0 || n.pread(fd, buf, len, addr) === len ? buf : -EFAULT;
  };

  /**
   * chmod, chown, utime(s), utimensat, setxattr, removexattr and their variants (filter.ts
   * PATH_OPS): metadata writes by path, performed by Ward on the file the path resolves to.
   * Following a last symlink: the file is opened O_PATH beneath the sandbox's root (IN_ROOT:
   * an absolute symlink resolves in the sandbox, never on the host) and the call made through
   * Ward's own /proc/self/fd/N, i.e. on that very inode. Not following: the parent directory is
   * resolved (resolveName) and the call made on the name in it. An fd (utimensat with a NULL
   * path, AT_EMPTY_PATH) is taken with pidfd_getfd. fchmodat2, setxattrat and removexattrat
   * (newer ways to say the same) answer ENOSYS: libc falls back to the ones above.
   */
  const handleAttrOp = (id: bigint, pid: number, name: SupervisedSyscall, args: bigint[]): void => {
    if (blind(id, name, WRITE_ONLY)) return;
    if (name === 'fchmodat2' || name === 'setxattrat' || name === 'removexattrat') return refuse(id, ENOSYS);
    const a = (i: number) => args[i]!;
    const fdArg = (i: number) => Number(BigInt.asIntN(32, a(i)));
    const u32 = (i: number) => Number(a(i) & 0xffffffffn);
    let dirfd = N.AT_FDCWD;
    let pathPtr: bigint;
    let follow = true;
    let flags = 0;
    switch (name) {
      case 'fchmodat': case 'futimesat': dirfd = fdArg(0); pathPtr = a(1); break;
      case 'fchownat': dirfd = fdArg(0); pathPtr = a(1); flags = u32(4); break;
      case 'utimensat': dirfd = fdArg(0); pathPtr = a(1); flags = u32(3); break;
      case 'lchown': case 'lsetxattr': case 'lremovexattr': pathPtr = a(0); follow = false; break;
      case 'fchmod': case 'fchown': case 'fsetxattr': case 'fremovexattr': dirfd = fdArg(0); pathPtr = 0n; break;
      default: pathPtr = a(0);
    }
    if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return refuse(id, EINVAL);
    if (flags & AT_SYMLINK_NOFOLLOW) follow = false;
    // The path; null means "the fd itself" (utimensat's NULL path, or "" with AT_EMPTY_PATH).
    let asked: string | null = null;
    if (!(name === 'utimensat' && pathPtr === 0n) && !ATTR_ON_FD.has(name)) {
      const got = readString(pid, Number(pathPtr));
      if (typeof got === 'number') return stillValid(id) ? refuse(id, -got) : undefined;
      asked = got === '' && flags & AT_EMPTY_PATH ? null : got;
      if (asked === '') return stillValid(id) ? refuse(id, ENOENT) : undefined;
    }
    // The call's data, read before any decision: times, xattr name and value.
    let times: Buffer | null = null;
    const timesArg = name === 'utime' || name === 'utimes' ? a(1) : name === 'futimesat' || name === 'utimensat' ? a(2) : 0n;
    if (timesArg !== 0n) {
      const raw = readBytes(pid, Number(timesArg), name === 'utime' ? 16 : name === 'utimensat' ? 32 : 32);
      if (typeof raw === 'number') return stillValid(id) ? refuse(id, -raw) : undefined;
      times = Buffer.alloc(32);
      for (let k = 0; k < 2; k++) {
        if (name === 'utimensat') raw.copy(times, 16 * k, 16 * k, 16 * k + 16);
        else if (name === 'utime') times.writeBigInt64LE(raw.readBigInt64LE(8 * k), 16 * k); // utimbuf: seconds only
        else {
          times.writeBigInt64LE(raw.readBigInt64LE(16 * k), 16 * k);
          const usec = raw.readBigInt64LE(16 * k + 8);
          if (usec < 0n || usec >= 1000000n) return stillValid(id) ? refuse(id, EINVAL) : undefined;
          times.writeBigInt64LE(usec * 1000n, 16 * k + 8);
        }
      }
    }
    let xname = '';
    let xvalue: Buffer = Buffer.alloc(0);
    let xflags = 0;
    if (name.endsWith('xattr')) {
      // setxattr(path, name, value, size, flags) and fsetxattr(fd, name, ...): the same argument slots.
      const got = readString(pid, Number(a(1)));
      if (typeof got === 'number') return stillValid(id) ? refuse(id, -got) : undefined;
      xname = got;
      if (name === 'setxattr' || name === 'lsetxattr' || name === 'fsetxattr') {
        const size = Number(a(3));
        if (size > XATTR_SIZE_MAX) return stillValid(id) ? refuse(id, E2BIG) : undefined;
        const v = size === 0 ? Buffer.alloc(0) : readBytes(pid, Number(a(2)), size);
        if (typeof v === 'number') return stillValid(id) ? refuse(id, -v) : undefined;
        xvalue = v;
        xflags = u32(4);
      }
    }
    if (!stillValid(id)) return;

    // The file: [our fd, the path to call through, its path for the decision, its identity].
    let own = -1;
    let dir = -1;
    let target: string;
    let decidedPath: string | null;
    let file: string | null = null;
    if (asked === null) {
      own = callerFile(id, pid, dirfd);
      if (own < 0) return own === -ENOENT ? undefined : refuse(id, -own);
      target = `/proc/self/fd/${own}`;
      decidedPath = fdPath(own);
      file = n.fileId(own);
    } else if (follow) {
      const full = absolute(pid, dirfd, asked);
      if (typeof full === 'number') return refuse(id, -full);
      openRoot(pid, id);
      own = n.openat2(rootFd, full, openHow(N.O_PATH | N.O_CLOEXEC, 0, N.RESOLVE_IN_ROOT | N.RESOLVE_NO_MAGICLINKS));
      if (own < 0) return refuse(id, -own);
      target = `/proc/self/fd/${own}`;
      decidedPath = fdPath(own);
      file = n.fileId(own);
    } else {
      const r = resolveName(pid, id, dirfd, asked);
      if (typeof r === 'number') return refuse(id, -r);
      dir = r.dir;
      target = `/proc/self/fd/${dir}/${r.name}`;
      decidedPath = r.path;
      const st = n.statAt(dir, r.name);
      file = typeof st === 'number' ? null : st.id;
    }
    try {
      if (decidedPath === null && asked !== null) return refuse(id, EACCES);
      // An fd with no path in the sandbox (a pipe, a socket, a memfd): nothing a rule or an
      // append-only entry can name, so nothing to refuse; the call is made on it all the same.
      if (decidedPath !== null) {
        const errno = judge({ pid, syscall: name, kind: 'attr', path: decidedPath, access: 'write', create: false, flags, file });
        if (errno) return refuse(id, errno);
      }
      let r: number;
      const nofollow = follow ? 0 : AT_SYMLINK_NOFOLLOW;
      switch (name) {
        case 'chmod': case 'fchmod': case 'fchmodat': r = n.chmod(target, u32(name === 'fchmodat' ? 2 : 1) & 0o7777); break;
        case 'chown': case 'fchown': case 'lchown': r = n.fchownat(N.AT_FDCWD, target, u32(1), u32(2), nofollow); break;
        case 'fchownat': r = n.fchownat(N.AT_FDCWD, target, u32(2), u32(3), nofollow); break;
        case 'setxattr': case 'lsetxattr': case 'fsetxattr': r = n.setxattr(target, xname, xvalue, xflags, follow); break;
        case 'removexattr': case 'lremovexattr': case 'fremovexattr': r = n.removexattr(target, xname, follow); break;
        default: r = n.utimensat(N.AT_FDCWD, target, times, nofollow); break; // utime, utimes, futimesat, utimensat
      }
      return r < 0 ? refuse(id, -r) : respond(id, 0, 0, 0);
    } finally {
      if (own >= 0) n.close(own);
      if (dir >= 0) n.close(dir);
    }
  };

  const args: bigint[] = [0n, 0n, 0n, 0n, 0n, 0n];
  let why = 'the sandbox ended';
  // fds are the process's, not the thread's: whatever ends the loop, ours are closed.
  try {
    for (;;) {
      if (Atomics.load(stop, 0) === 1) {
        why = 'stopped by Ward';
        break;
      }
      const ev = n.pollIn(listener, 250);
      if (ev < 0) {
        if (ev === -EINTR) continue;
        throw new Error(`poll on the seccomp listener failed (errno ${-ev})`);
      }
      if (ev === 0) continue;
      if (!(ev & 1)) break; // POLLHUP without POLLIN: no process uses the filter any more
      notif.fill(0);
      const r = n.ioctl(listener, N.NOTIF_RECV, notif);
      if (r < 0) {
        // ENOENT: the caller was killed or interrupted between poll and recv.
        if (r === -ENOENT || r === -EINTR) continue;
        throw new Error(`SECCOMP_IOCTL_NOTIF_RECV failed (errno ${-r})`);
      }
      count++;
      const id = notif.readBigUInt64LE(0);
      const pid = notif.readUInt32LE(8);
      const nr = notif.readInt32LE(16);
      for (let i = 0; i < 6; i++) args[i] = notif.readBigUInt64LE(32 + 8 * i);
      const name = names.get(nr);
      if (name === undefined) {
        refuse(id, EPERM);
        continue;
      }
      if (name === 'execve' || name === 'execveat') handleExec(id, pid, name, args);
      else if (BLIND_KIND.has(name)) handleBlind(id, pid, name);
      else if (PATH_KIND.has(name)) handlePathOp(id, pid, name, args);
      else if (FD_KIND.has(name)) handleFdOp(id, pid, name, args);
      else if (ATTR_KIND.has(name)) handleAttrOp(id, pid, name, args);
      else if (name === 'open' || name === 'openat' || name === 'openat2' || name === 'creat') handleOpen(id, pid, name, args);
      else refuse(id, EPERM); // notified but with no handler: fail closed
    }
  } finally {
    for (const fd of memFds.values()) n.close(fd);
    if (rootFd >= 0) n.close(rootFd);
  }
  post({ type: 'done', notifications: count, blind: blindCount, reason: why });
}
