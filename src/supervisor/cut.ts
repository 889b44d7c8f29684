/**
 * What a revocation does to access the sandbox already holds: open connections are cut, and
 * processes that can still write a revoked file are killed (killWriters, below).
 *
 * "After reading the secret, no network" must hold for connections opened *before* the read
 * too, or a program opens one early and writes the secret into it right after the read. The
 * egress broker cuts the connections it knows (launch.ts, `cut`), but it runs on Ward's main
 * thread and the relay carries a passed connection's bytes itself, so that cut lands a moment
 * after the rule fired: long enough for a write made right after the read to get out (a red
 * team leaked a secret that way in 3 runs of 5).
 *
 * So the supervisor thread cuts them itself, synchronously, while the call that fired the rule
 * is still waiting for its answer (the secret's fd is not injected yet, so nothing written to a
 * socket before this point can hold it). For every TCP socket of the sandbox's network
 * namespace that is not listening, it finds a process of the sandbox holding it, takes a
 * duplicate with pidfd_getfd and shuts the socket down. shutdown(2) acts on the socket, not
 * on one descriptor, so every copy of it (a forked child's, one passed over a unix socket) is
 * cut at once: a later write fails with EPIPE, and what was written before still arrives.
 *
 * Not cut: a socket whose only descriptor is in flight in a unix socket's queue at that
 * instant (no process holds it, so there is nothing to duplicate); the broker's cut, a moment
 * later, still ends it if it is a connection out (SECURITY-MODEL.md, Known gaps).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Native } from './native.js';

const SHUT_RDWR = 2;
const TCP_LISTEN = '0A';

/**
 * The pid namespace of `pid`, which must be other than Ward's, as must its network namespace
 * (null: it is gone). A sandbox always has both of its own; were `pid` in Ward's, a cut or a kill
 * "beside" it would reach the host's own processes: refuse rather than trust the caller.
 */
function sandboxPidNs(pid: number): string | null {
  const theirs: Record<string, string> = {};
  for (const ns of ['pid', 'net']) {
    try {
      theirs[ns] = readlinkSync(`/proc/${pid}/ns/${ns}`);
    } catch {
      return null;
    }
    if (theirs[ns] === readlinkSync(`/proc/self/ns/${ns}`)) throw new Error(`refusing to act on the processes beside pid ${pid}: it shares Ward's ${ns} namespace`);
  }
  return theirs.pid!;
}

/** Inodes of the TCP sockets (v4 and v6) of `pid`'s network namespace that are not listening. */
function connectedTcpInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue; // no IPv6 in the kernel, or the process is gone
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] === TCP_LISTEN || f[9] === '0') continue;
      inodes.add(f[9]!);
    }
  }
  return inodes;
}

/** Every process in the pid namespace `ns` (Ward's pids). */
function pidsIn(ns: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/ns/pid`) === ns) out.push(Number(name));
    } catch {
      // gone, or not ours to look at (then not the sandbox's: Ward owns every sandbox process)
    }
  }
  return out;
}

/**
 * Shuts down every connected TCP socket held by a process of the sandbox `pid` is in. Returns
 * how many sockets were shut down.
 */
export function cutTcpConnections(n: Native, pid: number): number {
  const ns = sandboxPidNs(pid);
  if (ns === null) return 0; // gone: its sockets, if shared, are held by others the broker's cut still reaches
  const inodes = connectedTcpInodes(pid);
  if (inodes.size === 0) return 0;
  let cut = 0;
  for (const p of pidsIn(ns)) {
    if (inodes.size === 0) break;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    let pidfd = -1;
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${p}/fd/${fd}`);
      } catch {
        continue;
      }
      const ino = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      if (ino === undefined || !inodes.has(ino)) continue;
      if (pidfd < 0) {
        pidfd = n.pidfdOpen(p);
        if (pidfd < 0) break; // exited: its sockets, if shared, are found in another process
      }
      const dup = n.pidfdGetfd(pidfd, Number(fd));
      if (dup < 0) continue;
      // The number may have been closed and reused since the readlink: cut only the socket we
      // looked at (socket inodes are unique, so a match is that very socket, whoever holds it).
      if (n.fileId(dup)?.endsWith(`:${ino}`) && n.shutdown(dup, SHUT_RDWR) === 0) {
        cut++;
        inodes.delete(ino);
      }
      n.close(dup);
    }
    if (pidfd >= 0) n.close(pidfd);
  }
  return cut;
}

const O_ACCMODE = 0o3;
const O_APPEND = 0o2000;
const SIGKILL = 9;

/** Whether writing (appending, `append`) to `path`, the file "dev:ino" `file`, is revoked now. */
export type WriteRevoked = (path: string, file: string | null, append: boolean) => boolean;

/** A process killed because it could still write a file a rule had just revoked. */
export interface Writer {
  /** Ward's pid namespace. */
  pid: number;
  /** The file, in the sandbox's view (the kernel's name for it). */
  file: string;
  /** How it could write: an fd opened for writing, or a shared writable mapping. */
  through: 'fd' | 'mapping';
}

/** "dev:ino" as fstat gives it, from /proc/PID/maps' "MM:mm" (hex) and inode: glibc's makedev. */
function mapId(dev: string, ino: string): string {
  const [ma, mi] = dev.split(':').map((h) => BigInt(`0x${h}`)) as [bigint, bigint];
  const d = ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
  return `${d}:${ino}`;
}

/** The first way process `p` (pinned by `pidfd`) can still write a revoked file, or null. */
function writerIn(n: Native, p: number, pidfd: number, revoked: WriteRevoked): Omit<Writer, 'pid'> | null {
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${p}/fd`);
  } catch {
    // gone
  }
  for (const fd of fds) {
    let flags: number;
    let link: string;
    try {
      flags = parseInt(/^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/${p}/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8);
      link = readlinkSync(`/proc/${p}/fd/${fd}`);
    } catch {
      continue;
    }
    if ((flags & O_ACCMODE) === 0 || !link.startsWith('/')) continue; // read-only, or a pipe, socket, anon inode
    // Its identity from the open file itself (a hard link made since launch is the same file).
    const dup = n.pidfdGetfd(pidfd, Number(fd));
    const id = dup < 0 ? null : n.fileId(dup);
    if (dup >= 0) n.close(dup);
    if (revoked(link, id, (flags & O_APPEND) !== 0)) return { file: link, through: 'fd' };
  }
  let maps = '';
  try {
    maps = readFileSync(`/proc/${p}/maps`, 'utf8');
  } catch {
    // gone
  }
  for (const line of maps.split('\n')) {
    // address perms offset dev inode path: a shared writable mapping writes the file itself.
    const m = /^\S+\s+(\S{4})\s+\S+\s+(\S+)\s+(\d+)\s+(\/.*)$/.exec(line);
    if (!m || m[1]![1] !== 'w' || m[1]![3] !== 's') continue;
    if (revoked(m[4]!, mapId(m[2]!, m[3]!), false)) return { file: m[4]!, through: 'mapping' };
  }
  return null;
}

/**
 * Kills (SIGKILL) every process of `pid`'s sandbox that can still write a file whose writing a
 * rule has just revoked: one holding it open for writing, or mapped shared and writable, since
 * before the revocation. The kernel cannot take an open file's access back, so the process
 * that holds it goes; otherwise "after reading untrusted content, no writes to src/" would hold
 * for new opens only. Rounds repeat until one finds nobody: a holder that forked between a
 * scan and its kill left the fd to its child, which the next round finds.
 * `revoked(path, file, append)`: writing (appending) to `path`, the file "dev:ino", is revoked.
 */
export function killWriters(n: Native, pid: number, revoked: WriteRevoked): Writer[] {
  const ns = sandboxPidNs(pid);
  if (ns === null) return [];
  const killed: Writer[] = [];
  const done = new Set<number>();
  for (let round = 0; round < 16; round++) {
    let found = 0;
    for (const p of pidsIn(ns)) {
      if (done.has(p)) continue;
      const pidfd = n.pidfdOpen(p);
      if (pidfd < 0) continue;
      try {
        // The pid may have been reused since the listing: act only on a process still in the sandbox.
        if (readlinkSync(`/proc/${p}/ns/pid`) !== ns) continue;
        const w = writerIn(n, p, pidfd, revoked);
        if (w && n.pidfdKill(pidfd, SIGKILL) === 0) {
          killed.push({ pid: p, ...w });
          done.add(p);
          found++;
        }
      } catch {
        // gone meanwhile
      } finally {
        n.close(pidfd);
      }
    }
    if (found === 0) break;
  }
  return killed;
}

/**
 * A process of the sandbox started by the launcher `launcherPid` (its first descendant in a pid
 * namespace other than Ward's), or null when none is left. For Ward's main thread, which is
 * told of a revocation without a pid of the sandbox (the broker's, a session's).
 */
export function sandboxPidUnder(launcherPid: number): number | null {
  const own = readlinkSync('/proc/self/ns/pid');
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone
    }
  }
  const queue = [launcherPid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    try {
      if (p !== launcherPid && readlinkSync(`/proc/${p}/ns/pid`) !== own) return p;
    } catch {
      continue;
    }
    queue.push(...(children.get(p) ?? []));
  }
  return null;
}
