/**
 * The few libc calls the supervisor needs and Node lacks (seccomp's ioctls, openat2, sendmsg
 * with SCM_RIGHTS, poll on a raw fd, capset and unshare for one thread), through koffi. Every
 * call is synchronous: the supervisor loop runs in its own worker thread, where blocking is the
 * point, and a synchronous koffi call costs well under a microsecond where an async one costs
 * tens. Each function returns the raw result, and a negative errno on failure (never throws on
 * a failed syscall), so the loop can pass errnos straight on to the sandbox.
 *
 * Constants and layouts are x86_64 kernel ABI (include/uapi/linux/seccomp.h, openat2.h).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// seccomp user notification (ioctl numbers: _IOWR('!', 0, struct seccomp_notif) and friends).
export const NOTIF_RECV = 0xc0502100;
export const NOTIF_SEND = 0xc0182101;
export const NOTIF_ID_VALID = 0x40082102;
export const NOTIF_ADDFD = 0x40182103;
export const NOTIF_SET_FLAGS = 0x40082104;
/** SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (6.6): wake the supervisor on the notifying CPU's terms. */
export const NOTIF_FD_SYNC_WAKE_UP = 1;
export const USER_NOTIF_FLAG_CONTINUE = 1;
/** SECCOMP_ADDFD_FLAG_SEND (5.14): install the fd and answer the syscall with it, atomically. */
export const ADDFD_FLAG_SEND = 2;
/** struct seccomp_notif: id u64, pid u32, flags u32, data { nr i32, arch u32, ip u64, args u64[6] }. */
export const NOTIF_SIZE = 80;
/** struct seccomp_notif_resp: id u64, val i64, error i32, flags u32. */
export const RESP_SIZE = 24;
/** struct seccomp_notif_addfd: id u64, flags u32, srcfd u32, newfd u32, newfd_flags u32. */
export const ADDFD_SIZE = 24;

// openat2's struct open_how { u64 flags; u64 mode; u64 resolve; } and its resolve flags.
export const OPEN_HOW_SIZE = 24;
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;

export const O_ACCMODE = 0o3;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;
export const O_TMPFILE = 0o20000000 | O_DIRECTORY;
export const AT_FDCWD = -100;
/**
 * The flags open(2) knows (the kernel's VALID_OPEN_FLAGS). openat() ignores other bits, openat2()
 * refuses them with EINVAL: the supervisor masks them so an emulated openat behaves like one.
 */
export const VALID_OPEN_FLAGS =
  O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK | 0o4010000 /* O_SYNC, O_DSYNC */ | 0o20000 /* FASYNC */ | 0o40000 /* O_DIRECT */ |
  0o100000 /* O_LARGEFILE */ | O_DIRECTORY | O_NOFOLLOW | 0o1000000 /* O_NOATIME */ | O_CLOEXEC | O_PATH | O_TMPFILE;

const SYS_openat2 = 437;
const SYS_rt_sigprocmask = 14;
const SYS_gettid = 186;
const SIG_BLOCK = 0;
const SYS_capset = 126;
const SYS_unshare = 272;
const SYS_fstat = 5;
const SYS_pidfd_open = 434;
const SYS_pidfd_getfd = 438;
const SYS_pidfd_send_signal = 424;
const PIDFD_THREAD = 0o200; // O_EXCL
const SYS_renameat2 = 316;
const SYS_newfstatat = 262;
const SYS_fchmodat = 268;
const AT_SYMLINK_NOFOLLOW = 0x100;
const F_GETFL = 3;
const CLONE_FS = 0x200;
const F_SETFL = 4;
const POLLIN = 1;
export const POLLHUP = 0x10;

export const AF_UNIX = 1;
export const SOCK_SEQPACKET = 5;
export const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_NOSIGNAL = 0x4000;
const MSG_DONTWAIT = 0x40;
const MSG_CMSG_CLOEXEC = 0x40000000;

type Koffi = typeof import('koffi');

export interface Native {
  ioctl(fd: number, req: number, arg: Buffer): number;
  /** An ioctl whose argument is a value, not a pointer (SECCOMP_IOCTL_NOTIF_SET_FLAGS). */
  ioctlValue(fd: number, req: number, arg: number): number;
  pread(fd: number, buf: Buffer, len: number, offset: number): number;
  openat2(dirfd: number, path: string, how: Buffer): number;
  open(path: string, flags: number): number;
  close(fd: number): void;
  readlink(path: string): string | number;
  setFlags(fd: number, flags: number): number;
  ftruncate(fd: number): number;
  pollIn(fd: number, timeoutMs: number): number;
  send(fd: number, data: Buffer): number;
  /** send(2) of data[off..] that never blocks (MSG_DONTWAIT), whatever the socket's own flags: bytes sent, or a negative errno (-EAGAIN: full). */
  sendNoWait(fd: number, data: Buffer, off: number): number;
  /** Receives one message of one byte with one fd in SCM_RIGHTS: both, or a negative errno (-EPIPE at EOF). */
  recvFd(fd: number): { fd: number; byte: number } | number;
  recvByte(fd: number): number;
  socketpair(): [number, number] | number;
  /** socket(2): an fd, or a negative errno. */
  socket(domain: number, type: number, protocol: number): number;
  /** recv(2) into buf, retried on EINTR: bytes received (0 at EOF), or a negative errno. */
  recv(fd: number, buf: Buffer): number;
  /** pipe2(O_CLOEXEC): [read end, write end]. */
  pipe(): [number, number] | number;
  /** Drops every capability of the calling thread only (capset with pid 0). */
  dropThreadCaps(): number;
  /** "dev:ino" of an open file (fstat), or null: which file it is, whatever name it was opened by. */
  fileId(fd: number): string | null;
  /** st_mode and st_rdev (the kernel's encoding, as /proc/PID/stat's tty_nr) of an open file (fstat), or null. */
  fileKind(fd: number): { mode: number; rdev: number } | null;
  /** The text of the symlink an O_PATH|O_NOFOLLOW fd is (readlinkat with an empty name), or -errno. */
  readlinkFd(fd: number): string | number;
  /** The filesystem type of an fd's file (statfs f_type, e.g. PROC_SUPER_MAGIC), or -errno. */
  fsType(fd: number): number;
  /**
   * pidfd_open(pid): a handle on the caller that cannot be recycled under us. With `thread`
   * (PIDFD_THREAD, Linux 6.9+), `pid` may be any thread's id and the handle names that thread:
   * pidfd_getfd through it reads that thread's fd table, which need not be its leader's.
   */
  pidfdOpen(pid: number, thread?: boolean): number;
  /** pidfd_getfd: our own fd for the caller's fd `fd`, sharing its open file description. */
  pidfdGetfd(pidfd: number, fd: number): number;
  getFlags(fd: number): number;
  /** A socket's SO_DOMAIN, SO_TYPE and SO_ACCEPTCONN (getsockopt), or null when fd is no socket. */
  sockKind(fd: number): { domain: number; type: number; listening: boolean } | null;
  /** The calling process's process group (getpgrp). */
  getpgrp(): number;
  /** pidfd_send_signal(pidfd, sig): to exactly the process the pidfd names, never a recycled pid. */
  pidfdKill(pidfd: number, sig: number): number;
  /** shutdown(2): acts on the socket itself, so every descriptor of it (in any process) is cut. */
  shutdown(fd: number, how: number): number;
  ftruncateTo(fd: number, length: bigint): number;
  fallocate(fd: number, mode: number, offset: bigint, len: bigint): number;
  unlinkat(dirfd: number, name: string, flags: number): number;
  renameat2(olddir: number, oldname: string, newdir: number, newname: string, flags: number): number;
  linkat(olddir: number, oldname: string, newdir: number, newname: string, flags: number): number;
  symlinkat(target: string, dirfd: number, name: string): number;
  mkdirat(dirfd: number, name: string, mode: number): number;
  mknodat(dirfd: number, name: string, mode: number, dev: bigint): number;
  /** "dev:ino" and the st_mode of `name` in `dirfd`, not following a last symlink; -errno. */
  statAt(dirfd: number, name: string): { id: string; mode: number } | number;
  chmod(path: string, mode: number): number;
  fchmodat(dirfd: number, name: string, mode: number, flags: number): number;
  fchownat(dirfd: number, name: string, uid: number, gid: number, flags: number): number;
  /** utimensat with `times` a struct timespec[2] (32 bytes) or null for "now". */
  utimensat(dirfd: number, name: string, times: Buffer | null, flags: number): number;
  setxattr(path: string, name: string, value: Buffer, flags: number, follow: boolean): number;
  removexattr(path: string, name: string, follow: boolean): number;
  /**
   * Blocks every asynchronous signal for the calling thread only (rt_sigprocmask), so that
   * process-directed signals go to Ward's other threads. Faults (SIGSEGV, SIGBUS, SIGFPE,
   * SIGILL, SIGTRAP, SIGSYS) stay deliverable: blocking them would turn a fault into a kill.
   */
  blockThreadSignals(): number;
  /** The calling thread's kernel id (gettid). */
  gettid(): number;
  /** A private fs_struct (umask, cwd) for the calling thread, then umask(0) on it. */
  privateUmask(): number;
  errno(): number;
}

let cached: Native | null = null;

export function loadNative(): Native {
  if (cached) return cached;
  let koffi: Koffi;
  try {
    koffi = require('koffi') as Koffi;
  } catch (e) {
    throw new Error(`supervised mode needs the koffi package (${(e as Error).message}); install Ward's dependencies with \`npm install\``);
  }
  const libc = koffi.load('libc.so.6');
  // koffi keeps the errno of the last native call (its own work in between could clobber libc's).
  const errno = (): number => koffi.errno();
  const fail = (): number => -errno();
  // syscall() is variadic in C; declaring fixed prototypes is fine on x86_64 for integer and
  // pointer arguments, and much faster through koffi than its variadic path.
  const sysOpenat2 = libc.func('syscall', 'long', ['long', 'int', 'str', 'void *', 'size_t']);
  const sysCapset = libc.func('syscall', 'long', ['long', 'void *', 'void *']);
  const sysUnshare = libc.func('syscall', 'long', ['long', 'long']);
  const sysFstat = libc.func('syscall', 'long', ['long', 'int', 'void *']);
  const ioctl = libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']);
  const ioctlValue = libc.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']);
  const pread = libc.func('pread64', 'long', ['int', 'void *', 'size_t', 'int64_t']);
  const open = libc.func('open', 'int', ['str', 'int']);
  const close = libc.func('close', 'int', ['int']);
  const readlink = libc.func('readlink', 'long', ['str', 'void *', 'size_t']);
  const fcntl = libc.func('fcntl', 'int', ['int', 'int', 'int']);
  const ftruncate = libc.func('ftruncate', 'int', ['int', 'int64_t']);
  const poll = libc.func('poll', 'int', ['void *', 'unsigned long', 'int']);
  const send = libc.func('send', 'long', ['int', 'void *', 'size_t', 'int']);
  const recv = libc.func('recv', 'long', ['int', 'void *', 'size_t', 'int']);
  const recvmsg = libc.func('recvmsg', 'long', ['int', 'void *', 'int']);
  const socketpair = libc.func('socketpair', 'int', ['int', 'int', 'int', 'void *']);
  const socket = libc.func('socket', 'int', ['int', 'int', 'int']);
  const pipe2 = libc.func('pipe2', 'int', ['void *', 'int']);
  const shutdown = libc.func('shutdown', 'int', ['int', 'int']);
  const getsockopt = libc.func('getsockopt', 'int', ['int', 'int', 'int', 'void *', 'void *']);
  const getpgrp = libc.func('getpgrp', 'int', []);
  const sysPidfdSignal = libc.func('syscall', 'long', ['long', 'int', 'int', 'void *', 'unsigned int']);
  const umask = libc.func('umask', 'uint32_t', ['uint32_t']);
  const sys1 = libc.func('syscall', 'long', ['long']);
  const sys2 = libc.func('syscall', 'long', ['long', 'long', 'long']);
  const sysSigmask = libc.func('syscall', 'long', ['long', 'int', 'void *', 'void *', 'size_t']);
  const sys3 = libc.func('syscall', 'long', ['long', 'long', 'long', 'long']);
  const fallocate = libc.func('fallocate', 'int', ['int', 'int', 'int64_t', 'int64_t']);
  const unlinkat = libc.func('unlinkat', 'int', ['int', 'str', 'int']);
  const renameat2 = libc.func('syscall', 'long', ['long', 'int', 'str', 'int', 'str', 'unsigned int']);
  const linkat = libc.func('linkat', 'int', ['int', 'str', 'int', 'str', 'int']);
  const symlinkat = libc.func('symlinkat', 'int', ['str', 'int', 'str']);
  const mkdirat = libc.func('mkdirat', 'int', ['int', 'str', 'uint32_t']);
  const mknodat = libc.func('mknodat', 'int', ['int', 'str', 'uint32_t', 'uint64_t']);
  const chmod = libc.func('chmod', 'int', ['str', 'uint32_t']);
  const fchmodat = libc.func('syscall', 'long', ['long', 'int', 'str', 'uint32_t']);
  const fchownat = libc.func('fchownat', 'int', ['int', 'str', 'uint32_t', 'uint32_t', 'int']);
  const utimensat = libc.func('utimensat', 'int', ['int', 'str', 'void *', 'int']);
  const setxattr = libc.func('setxattr', 'int', ['str', 'str', 'void *', 'size_t', 'int']);
  const lsetxattr = libc.func('lsetxattr', 'int', ['str', 'str', 'void *', 'size_t', 'int']);
  const removexattr = libc.func('removexattr', 'int', ['str', 'str']);
  const lremovexattr = libc.func('lremovexattr', 'int', ['str', 'str']);
  const sysNewfstatat = libc.func('syscall', 'long', ['long', 'int', 'str', 'void *', 'int']);
  const readlinkat = libc.func('readlinkat', 'long', ['int', 'str', 'void *', 'size_t']);
  const fstatfs = libc.func('fstatfs', 'int', ['int', 'void *']);

  const linkBuf = Buffer.alloc(4096);
  const statBuf = Buffer.alloc(144); // x86_64 struct stat: st_dev u64 at 0, st_ino u64 at 8
  const statfsBuf = Buffer.alloc(120); // x86_64 struct statfs: f_type i64 at 0
  const pollBuf = Buffer.alloc(8);
  cached = {
    ioctl: (fd, req, arg) => (ioctl(fd, req, arg) < 0 ? fail() : 0),
    ioctlValue: (fd, req, arg) => (ioctlValue(fd, req, arg) < 0 ? fail() : 0),
    pread: (fd, buf, len, offset) => {
      const n = Number(pread(fd, buf, len, offset));
      return n < 0 ? fail() : n;
    },
    openat2: (dirfd, path, how) => {
      // EAGAIN: a `..` was resolved while a rename or mount happened anywhere on the system, and
      // RESOLVE_IN_ROOT / RESOLVE_BENEATH could not prove it stayed inside; openat2(2) says to
      // retry. Under load (sandboxes starting: mounts) a plain `a/../b` hit it and the sandbox
      // got EAGAIN from an open. Bounded: a steady stream of renames still gets EAGAIN, never
      // an unchecked open.
      for (let tries = 0; ; tries++) {
        const r = Number(sysOpenat2(SYS_openat2, dirfd, path, how, OPEN_HOW_SIZE));
        if (r >= 0) return r;
        const e = errno();
        if (e !== 11 || tries >= 64) return -e;
      }
    },
    open: (path, flags) => {
      const r = open(path, flags) as number;
      return r < 0 ? fail() : r;
    },
    close: (fd) => void close(fd),
    readlink: (path) => {
      const n = Number(readlink(path, linkBuf, linkBuf.length));
      return n < 0 ? fail() : linkBuf.toString('utf8', 0, n);
    },
    setFlags: (fd, flags) => (fcntl(fd, F_SETFL, flags) < 0 ? fail() : 0),
    ftruncate: (fd) => (ftruncate(fd, 0) < 0 ? fail() : 0),
    pollIn: (fd, timeoutMs) => {
      pollBuf.writeInt32LE(fd, 0);
      pollBuf.writeInt16LE(POLLIN, 4);
      pollBuf.writeInt16LE(0, 6);
      const r = poll(pollBuf, 1, timeoutMs) as number;
      return r < 0 ? fail() : r === 0 ? 0 : pollBuf.readInt16LE(6);
    },
    send: (fd, data) => {
      const n = Number(send(fd, data, data.length, MSG_NOSIGNAL));
      return n < 0 ? fail() : n;
    },
    sendNoWait: (fd, data, off) => {
      const n = Number(send(fd, data.subarray(off), data.length - off, MSG_NOSIGNAL | MSG_DONTWAIT));
      return n < 0 ? fail() : n;
    },
    recvFd: (fd) => {
      // struct msghdr (56 bytes): name, namelen, iov, iovlen, control, controllen, flags.
      const byte = Buffer.alloc(1);
      const iov = Buffer.alloc(16);
      const control = Buffer.alloc(24); // CMSG_SPACE(sizeof(int))
      const msg = Buffer.alloc(56);
      iov.writeBigUInt64LE(koffi.address(byte), 0);
      iov.writeBigUInt64LE(1n, 8);
      msg.writeBigUInt64LE(koffi.address(iov), 16);
      msg.writeBigUInt64LE(1n, 24);
      msg.writeBigUInt64LE(koffi.address(control), 32);
      msg.writeBigUInt64LE(BigInt(control.length), 40);
      let n: number;
      do n = Number(recvmsg(fd, msg, MSG_CMSG_CLOEXEC));
      while (n < 0 && errno() === 4);
      if (n < 0) return fail();
      if (n === 0) return -32; // EPIPE: the launcher closed its end
      // struct cmsghdr: len u64, level i32, type i32, data.
      if (msg.readBigUInt64LE(40) < 20n || control.readInt32LE(8) !== SOL_SOCKET || control.readInt32LE(12) !== SCM_RIGHTS) return -71; // EPROTO
      return { fd: control.readInt32LE(16), byte: byte[0]! };
    },
    recvByte: (fd) => {
      const b = Buffer.alloc(1);
      let n: number;
      do n = Number(recv(fd, b, 1, 0));
      while (n < 0 && errno() === 4);
      return n < 0 ? fail() : n === 0 ? -32 : b[0]!;
    },
    socket: (domain, type, protocol) => {
      const fd = socket(domain, type, protocol) as number;
      return fd < 0 ? fail() : fd;
    },
    recv: (fd, buf) => {
      let n: number;
      do n = Number(recv(fd, buf, buf.length, 0));
      while (n < 0 && errno() === 4);
      return n < 0 ? fail() : n;
    },
    socketpair: () => {
      const fds = Buffer.alloc(8);
      return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0 ? fail() : [fds.readInt32LE(0), fds.readInt32LE(4)];
    },
    pipe: () => {
      const fds = Buffer.alloc(8);
      return pipe2(fds, O_CLOEXEC) < 0 ? fail() : [fds.readInt32LE(0), fds.readInt32LE(4)];
    },
    dropThreadCaps: () => {
      // struct __user_cap_header_struct { u32 version = _LINUX_CAPABILITY_VERSION_3; int pid = 0 (this thread) }
      const hdr = Buffer.alloc(8);
      hdr.writeUInt32LE(0x20080522, 0);
      const data = Buffer.alloc(24); // two __user_cap_data_struct { effective, permitted, inheritable }, all zero
      return Number(sysCapset(SYS_capset, hdr, data)) < 0 ? fail() : 0;
    },
    blockThreadSignals: () => {
      // Signal n is bit n-1 of the kernel's 64-bit sigset_t.
      let set = 0xffffffffffffffffn;
      for (const sig of [4, 5, 7, 8, 11, 31]) set &= ~(1n << BigInt(sig - 1));
      const mask = Buffer.alloc(8);
      mask.writeBigUInt64LE(set, 0);
      return Number(sysSigmask(SYS_rt_sigprocmask, SIG_BLOCK, mask, null, 8)) < 0 ? fail() : 0;
    },
    gettid: () => Number(sys1(SYS_gettid)),
    privateUmask: () => {
      if (Number(sysUnshare(SYS_unshare, CLONE_FS)) < 0) return fail();
      umask(0);
      return 0;
    },
    pidfdOpen: (pid, thread) => {
      const r = Number(sys2(SYS_pidfd_open, pid, thread ? PIDFD_THREAD : 0));
      return r < 0 ? fail() : r;
    },
    pidfdGetfd: (pidfd, fd) => {
      const r = Number(sys3(SYS_pidfd_getfd, pidfd, fd, 0));
      return r < 0 ? fail() : r;
    },
    getFlags: (fd) => {
      const r = fcntl(fd, F_GETFL, 0) as number;
      return r < 0 ? fail() : r;
    },
    sockKind: (fd) => {
      // SOL_SOCKET 1; SO_TYPE 3, SO_ACCEPTCONN 30, SO_DOMAIN 39
      const opt = (name: number): number | null => {
        const v = Buffer.alloc(4);
        const len = Buffer.alloc(4);
        len.writeUInt32LE(4, 0);
        return getsockopt(fd, 1, name, v, len) < 0 ? null : v.readInt32LE(0);
      };
      const domain = opt(39);
      const type = opt(3);
      const accept = opt(30);
      return domain === null || type === null || accept === null ? null : { domain, type, listening: accept !== 0 };
    },
    getpgrp: () => getpgrp() as number,
    pidfdKill: (pidfd, sig) => (Number(sysPidfdSignal(SYS_pidfd_send_signal, pidfd, sig, null, 0)) < 0 ? fail() : 0),
    shutdown: (fd, how) => (shutdown(fd, how) < 0 ? fail() : 0),
    ftruncateTo: (fd, length) => (ftruncate(fd, length) < 0 ? fail() : 0),
    fallocate: (fd, mode, offset, len) => (fallocate(fd, mode, offset, len) < 0 ? fail() : 0),
    unlinkat: (dirfd, name, flags) => (unlinkat(dirfd, name, flags) < 0 ? fail() : 0),
    renameat2: (od, on, nd, nn, flags) => (Number(renameat2(SYS_renameat2, od, on, nd, nn, flags)) < 0 ? fail() : 0),
    linkat: (od, on, nd, nn, flags) => (linkat(od, on, nd, nn, flags) < 0 ? fail() : 0),
    symlinkat: (target, dirfd, name) => (symlinkat(target, dirfd, name) < 0 ? fail() : 0),
    mkdirat: (dirfd, name, mode) => (mkdirat(dirfd, name, mode) < 0 ? fail() : 0),
    mknodat: (dirfd, name, mode, dev) => (mknodat(dirfd, name, mode, dev) < 0 ? fail() : 0),
    chmod: (path, mode) => (chmod(path, mode) < 0 ? fail() : 0),
    // The raw syscall: glibc's fchmodat emulates AT_SYMLINK_NOFOLLOW; without flags the kernel's is exact.
    fchmodat: (dirfd, name, mode, flags) => (flags !== 0 ? -22 : Number(fchmodat(SYS_fchmodat, dirfd, name, mode)) < 0 ? fail() : 0),
    fchownat: (dirfd, name, uid, gid, flags) => (fchownat(dirfd, name, uid >>> 0, gid >>> 0, flags) < 0 ? fail() : 0),
    utimensat: (dirfd, name, times, flags) => (utimensat(dirfd, name, times, flags) < 0 ? fail() : 0),
    setxattr: (path, name, value, flags, follow) => ((follow ? setxattr : lsetxattr)(path, name, value, value.length, flags) < 0 ? fail() : 0),
    removexattr: (path, name, follow) => ((follow ? removexattr : lremovexattr)(path, name) < 0 ? fail() : 0),
    statAt: (dirfd, name) =>
      Number(sysNewfstatat(SYS_newfstatat, dirfd, name, statBuf, AT_SYMLINK_NOFOLLOW)) < 0
        ? fail()
        : { id: `${statBuf.readBigUInt64LE(0)}:${statBuf.readBigUInt64LE(8)}`, mode: statBuf.readUInt32LE(24) },
    fileId: (fd) => (Number(sysFstat(SYS_fstat, fd, statBuf)) < 0 ? null : `${statBuf.readBigUInt64LE(0)}:${statBuf.readBigUInt64LE(8)}`),
    // st_mode u32 at 24, st_rdev u64 at 40
    fileKind: (fd) => (Number(sysFstat(SYS_fstat, fd, statBuf)) < 0 ? null : { mode: statBuf.readUInt32LE(24), rdev: Number(statBuf.readBigUInt64LE(40)) }),
    readlinkFd: (fd) => {
      const n = Number(readlinkat(fd, '', linkBuf, linkBuf.length));
      return n < 0 ? fail() : linkBuf.toString('utf8', 0, n);
    },
    fsType: (fd) => (fstatfs(fd, statfsBuf) < 0 ? fail() : Number(statfsBuf.readBigInt64LE(0))),
    errno,
  };
  return cached;
}

/** A SOCK_SEQPACKET socketpair (close-on-exec) for the launcher handshake, from the main thread. */
export function seqpacketPair(): [number, number] {
  const r = loadNative().socketpair();
  if (typeof r === 'number') throw new Error(`supervise: socketpair failed (errno ${-r})`);
  return r;
}
