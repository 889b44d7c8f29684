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
 * namespace that is not listening, it finds a process of the sandbox holding it (in any of its
 * threads' fd tables), takes a duplicate with pidfd_getfd and shuts the socket down. shutdown(2) acts on the socket, not
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
const SIGKILL = 9;
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
 * The threads of process `p`, its leader first. /proc/P/fd and /proc/P/maps are the leader's
 * view only: a thread made without CLONE_FILES has an fd table of its own, seen only under
 * /proc/P/task/TID/fd, and once the leader has exited (pthread_exit in main) /proc/P shows no
 * fds and no mappings at all while the other threads still hold and use them.
 */
function threadsOf(p: number): number[] {
  let tids: number[];
  try {
    tids = readdirSync(`/proc/${p}/task`).filter((d) => /^\d+$/.test(d)).map(Number);
  } catch {
    return [];
  }
  return [p, ...tids.filter((t) => t !== p)];
}

/** The fds in thread `tid`'s table (of process `p`) and what each names, as readlink gives it. */
function fdLinks(p: number, tid: number): [number, string][] {
  const dir = `/proc/${p}/task/${tid}/fd`;
  let fds: string[];
  try {
    fds = readdirSync(dir);
  } catch {
    return []; // gone
  }
  const out: [number, string][] = [];
  for (const fd of fds) {
    try {
      out.push([Number(fd), readlinkSync(`${dir}/${fd}`)]);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** pidfd_open refused PIDFD_THREAD: a kernel before 6.9 cannot reach a thread's own fd table. */
const NO_THREAD_PIDFD = -22; // -EINVAL

/**
 * Pidfds on the threads of process `p`, opened when first asked for (`of(tid)`: a pidfd, or a
 * negative errno) and closed together. pidfd_getfd reads the table of the thread its pidfd
 * names, and a plain pidfd names the leader: a thread's own table, or the table of a process
 * whose leader has exited, needs a PIDFD_THREAD pidfd on the thread itself.
 */
function threadPidfds(n: Native, p: number) {
  const open = new Map<number, number>();
  return {
    of(tid: number): number {
      let fd = open.get(tid);
      if (fd === undefined) {
        fd = n.pidfdOpen(tid, tid !== p);
        open.set(tid, fd);
      }
      return fd;
    },
    close(): void {
      for (const fd of open.values()) if (fd >= 0) n.close(fd);
    },
  };
}

/**
 * Shuts down every connected TCP socket held by a process of the sandbox `pid` is in, in any of
 * its threads' fd tables. Returns how many sockets were shut down. A socket held only in a
 * thread's own table on a kernel that cannot duplicate from it (before 6.9) cannot be shut down
 * from here: its process is killed instead (not counted, the socket was not cut).
 */
export function cutTcpConnections(n: Native, pid: number): number {
  const ns = sandboxPidNs(pid);
  if (ns === null) return 0; // gone: its sockets, if shared, are held by others the broker's cut still reaches
  const inodes = connectedTcpInodes(pid);
  if (inodes.size === 0) return 0;
  let cut = 0;
  for (const p of pidsIn(ns)) {
    if (inodes.size === 0) break;
    const pidfds = threadPidfds(n, p);
    try {
      threads: for (const tid of threadsOf(p)) {
        for (const [fd, link] of fdLinks(p, tid)) {
          const ino = /^socket:\[(\d+)\]$/.exec(link)?.[1];
          if (ino === undefined || !inodes.has(ino)) continue;
          const pidfd = pidfds.of(tid);
          if (pidfd === NO_THREAD_PIDFD) {
            // Fail closed: the thread would keep a way out the rule has just taken away.
            if (pidfds.of(p) >= 0) n.pidfdKill(pidfds.of(p), SIGKILL);
            break threads;
          }
          if (pidfd < 0) continue threads; // exited: its sockets, if shared, are found in another table
          const dup = n.pidfdGetfd(pidfd, fd);
          if (dup < 0) continue;
          // The number may have been closed and reused since the readlink: cut only the socket we
          // looked at (socket inodes are unique, so a match is that very socket, whoever holds it).
          if (n.fileId(dup)?.endsWith(`:${ino}`) && n.shutdown(dup, SHUT_RDWR) === 0) {
            cut++;
            inodes.delete(ino);
          }
          n.close(dup);
        }
      }
    } finally {
      pidfds.close();
    }
  }
  return cut;
}

const O_ACCMODE = 0o3;
const O_APPEND = 0o2000;

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

/**
 * Whether the shared mapping at `range` ("start-end", as in maps) of process `p`, seen through
 * thread `tid`, may be made writable: VM_MAYWRITE ("mw" in smaps' VmFlags), which a shared file
 * mapping has whenever its file was opened for writing, even if it is mapped read-only now,
 * since mprotect can add PROT_WRITE after the fd is closed. True when smaps cannot tell.
 */
function mayWrite(p: number, tid: number, range: string): boolean {
  let smaps: string;
  try {
    smaps = readFileSync(`/proc/${p}/task/${tid}/smaps`, 'utf8');
  } catch {
    return true;
  }
  // The mapping may have been split by an mprotect since maps was read: its start stays.
  const start = range.split('-')[0]!;
  const at = smaps.search(new RegExp(`^${start}-`, 'm'));
  if (at < 0) return true;
  const flags = /^VmFlags:(.*)$/m.exec(smaps.slice(at))?.[1];
  return flags === undefined || flags.split(/\s+/).includes('mw');
}

/**
 * The first way process `p` can still write a revoked file, or null: an fd open for writing in
 * any of its threads' tables, or a shared mapping of the file that is or may be made writable.
 * An fd only a thread's own table holds, on a kernel that cannot duplicate it from there (before
 * 6.9), cannot be told from a hard link of a revoked file: it counts as a writer (fail closed).
 */
function writerIn(n: Native, p: number, pidfds: ReturnType<typeof threadPidfds>, revoked: WriteRevoked): Omit<Writer, 'pid'> | null {
  const tids = threadsOf(p);
  const judged = new Set<string>();
  for (const tid of tids) {
    for (const [fd, link] of fdLinks(p, tid)) {
      if (!link.startsWith('/')) continue; // a pipe, socket, anon inode
      let info: string;
      try {
        info = readFileSync(`/proc/${p}/task/${tid}/fdinfo/${fd}`, 'utf8');
      } catch {
        continue;
      }
      const flags = parseInt(/^flags:\s*([0-7]+)$/m.exec(info)?.[1] ?? '0', 8);
      if ((flags & O_ACCMODE) === 0) continue; // read-only
      // Threads that share a table list the same fds: the same number, name, flags, mount and
      // inode is the same open file, judged once.
      const key = `${fd}\0${link}\0${info.replace(/^pos:.*$/m, '')}`;
      if (judged.has(key)) continue;
      judged.add(key);
      const append = (flags & O_APPEND) !== 0;
      const pidfd = pidfds.of(tid);
      if (pidfd === NO_THREAD_PIDFD) return { file: link, through: 'fd' };
      // Its identity from the open file itself (a hard link made since launch is the same file).
      const dup = pidfd < 0 ? -1 : n.pidfdGetfd(pidfd, fd);
      const id = dup < 0 ? null : n.fileId(dup);
      if (dup >= 0) n.close(dup);
      if (revoked(link, id, append)) return { file: link, through: 'fd' };
    }
  }
  // Threads share one memory map; a leader that has exited shows none, so a live thread's is read.
  for (const tid of tids) {
    let maps: string;
    try {
      maps = readFileSync(`/proc/${p}/task/${tid}/maps`, 'utf8');
    } catch {
      continue;
    }
    if (maps === '') continue;
    for (const line of maps.split('\n')) {
      // range perms offset dev inode path: a shared mapping writes the file itself.
      const m = /^(\S+)\s+(\S{4})\s+\S+\s+(\S+)\s+(\d+)\s+(\/.*)$/.exec(line);
      if (!m || m[2]![3] !== 's' || !revoked(m[5]!, mapId(m[3]!, m[4]!), false)) continue;
      if (m[2]![1] === 'w' || mayWrite(p, tid, m[1]!)) return { file: m[5]!, through: 'mapping' };
    }
    break;
  }
  return null;
}

/**
 * Kills (SIGKILL) every process of `pid`'s sandbox that can still write a file whose writing a
 * rule has just revoked: one holding it open for writing, or mapped shared from a file opened
 * for writing (writable now, or once mprotect adds PROT_WRITE), since before the revocation. The kernel cannot take an open file's access back, so the process
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
      const pidfds = threadPidfds(n, p);
      const pidfd = pidfds.of(p);
      if (pidfd < 0) continue;
      try {
        // The pid may have been reused since the listing: act only on a process still in the sandbox.
        if (readlinkSync(`/proc/${p}/ns/pid`) !== ns) continue;
        const w = writerIn(n, p, pidfds, revoked);
        if (w && n.pidfdKill(pidfd, SIGKILL) === 0) {
          killed.push({ pid: p, ...w });
          done.add(p);
          found++;
        }
      } catch {
        // gone meanwhile
      } finally {
        pidfds.close();
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
