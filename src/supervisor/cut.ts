/**
 * Cutting the sandbox's open connections at the moment a rule revokes the network.
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

/** Inodes of the TCP sockets (v4 and v6) of `pid`'s network namespace that are not listening. */
export function connectedTcpInodes(pid: number): Set<string> {
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

/** Every process in `pid`'s pid namespace (Ward's pids), `pid` included. */
export function pidsBeside(pid: number): number[] {
  let ns: string;
  try {
    ns = readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return [];
  }
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
  // A sandbox always has pid and network namespaces of its own. Were `pid` in Ward's, this would
  // cut every connection of the host's processes: refuse rather than trust the caller.
  for (const ns of ['pid', 'net']) {
    let theirs: string;
    try {
      theirs = readlinkSync(`/proc/${pid}/ns/${ns}`);
    } catch {
      return 0; // gone: its sockets, if shared, are held by others the broker's cut still reaches
    }
    if (theirs === readlinkSync(`/proc/self/ns/${ns}`)) throw new Error(`refusing to cut connections beside pid ${pid}: it shares Ward's ${ns} namespace`);
  }
  const inodes = connectedTcpInodes(pid);
  if (inodes.size === 0) return 0;
  let cut = 0;
  for (const p of pidsBeside(pid)) {
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
