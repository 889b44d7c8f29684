/**
 * Unix sockets inside granted trees. connect(2) to a pathname socket needs only write permission
 * on the socket's inode: a read-only bind does not take that away (the kernel's read-only-mount
 * check covers regular files, directories and symlinks only), and Landlock (up to ABI 7) does not
 * restrict connecting at all. A socket in a granted tree therefore reaches its server, which acts
 * outside the sandbox with its own rights: the session bus and systemd's private socket run
 * anything (`systemd-run`), dockerd and the system's systemd as root, an ssh-agent signs with the
 * user's keys. The planner masks each socket it finds (Ward's mask file is bound over it, so
 * connect gets ECONNREFUSED); this module finds them.
 *
 * Two sources, because neither alone is complete and a full walk of every tree would cost more
 * than the rest of a launch:
 *   - /proc/net/unix: every socket bound to a path in Ward's network namespace, wherever it is,
 *     at the price of reading one small file;
 *   - a walk of the granted trees' parts in the places sockets live (SOCKET_AREAS,
 *     $XDG_RUNTIME_DIR), which must see everything there, or the plan is refused: a server there
 *     may be in another network namespace (a container's) and so absent from /proc/net/unix.
 * Other trees are not walked: a few milliseconds each, for every launch, against sockets whose
 * server is in another network namespace and outside those places (SECURITY-MODEL.md, gaps).
 */
import { opendirSync, readFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { lstatOrNull, realOr } from '../paths.js';
import { isWithin } from '../policy/expand.js';

/** Where unix sockets live on a Linux host: a grant there must be walked to the end. */
export const SOCKET_AREAS: readonly string[] = ['/run', '/var/run', '/tmp', '/var/tmp', '/dev/shm'];

/**
 * How far a walk of a socket area goes: it must finish within these, or the plan is refused.
 * Depth counts directories below the walked root.
 */
export const SOCKET_WALK = { entries: 20_000, depth: 16 };

export interface WalkLimit {
  entries: number;
  depth: number;
}

/** The socket areas of this host and caller, by real path, each once. */
export function socketAreas(env: NodeJS.ProcessEnv): string[] {
  const xdg = env.XDG_RUNTIME_DIR;
  const raw = [...SOCKET_AREAS, ...(xdg && path.isAbsolute(xdg) ? [xdg] : [])];
  return [...new Set(raw.map(realOr))];
}

/** The absolute paths in /proc/net/unix (`text`, when given, instead of the file). */
export function boundSocketPaths(text?: string): string[] {
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/proc/net/unix', 'utf8');
    } catch {
      return []; // no /proc: the walks alone decide
    }
  }
  const out = new Set<string>();
  for (const line of t.split('\n').slice(1)) {
    // "Num RefCount Protocol Flags Type St Inode Path": the path is the 8th field, and may hold spaces.
    const m = /^\s*\S+:\s+(?:\S+\s+){6}(\/.*)$/.exec(line);
    if (m) out.add(m[1]!);
  }
  return [...out];
}

export interface WalkResult {
  sockets: string[];
  /** Why the walk stopped early; undefined when it saw every entry. */
  stopped?: string;
}

/**
 * The sockets below `root` (a real path), without following symlinks (a link's target is found
 * where it lies, if a grant exposes it) and without entering the directories `skip` accepts.
 * Unreadable directories are passed over: the sandbox, with no more rights than Ward, cannot
 * enter them either.
 */
export function walkSockets(root: string, skip: (dir: string) => boolean, limit: WalkLimit): WalkResult {
  const sockets: string[] = [];
  const queue: [string, number][] = [[root, 0]];
  let seen = 0;
  for (let i = 0; i < queue.length; i++) {
    const [dir, depth] = queue[i]!;
    let d;
    try {
      d = opendirSync(dir);
    } catch {
      continue;
    }
    try {
      // Entry by entry, so a huge directory costs no more than the limit.
      for (let e = d.readSync(); e !== null; e = d.readSync()) {
        if (++seen > limit.entries) return { sockets, stopped: `more than ${limit.entries} entries` };
        const p = path.join(dir, e.name);
        if (e.isSocket()) sockets.push(p);
        else if (e.isDirectory() && !skip(p)) {
          if (depth + 1 > limit.depth) return { sockets, stopped: `directories more than ${limit.depth} levels deep (${p})` };
          queue.push([p, depth + 1]);
        }
      }
    } catch {
      /* a directory removed while it was read: what was read counts */
    } finally {
      d.closeSync();
    }
  }
  return { sockets, stopped: undefined };
}

/**
 * The parts of the bound tree `root` that lie in a socket area: the tree itself when it is inside
 * one, else each area inside it.
 */
export function areaParts(root: string, areas: readonly string[]): string[] {
  if (areas.some((a) => isWithin(root, a))) return [root];
  return areas.filter((a) => isWithin(a, root));
}

/** `p`'s real path when it is a socket node (its directory resolved, the node itself kept); else undefined. */
export function realSocket(p: string): string | undefined {
  if (!lstatOrNull(p)?.isSocket()) return undefined;
  const real = path.join(realOr(path.dirname(p)), path.basename(p));
  return lstatOrNull(real)?.isSocket() ? real : undefined;
}

export interface SocketPlanInput {
  /** Real paths of the host trees bound into the sandbox. */
  roots: readonly string[];
  /** Real paths already hidden (masked): nothing below them is visible. */
  hidden: readonly string[];
  /** Real paths granted by name: a socket there is the user's choice, not masked. */
  granted: ReadonlySet<string>;
  areas: readonly string[];
  /** /proc/net/unix's paths (boundSocketPaths()). */
  bound: readonly string[];
}

export interface SocketPlan {
  /** Sockets to mask, by real path, sorted. */
  masks: string[];
  /** Sockets granted by name (left reachable). */
  granted: string[];
  /** A bound tree's part in a socket area that the walk could not finish: the plan must be refused. */
  incomplete?: { root: string; part: string; stopped: string };
}

/**
 * Whether bwrap, in the sandbox's user namespace (where only Ward's own uid and gid are mapped),
 * can search the directory `st`: only then can it mount a mask below it, and only then can the
 * command (with less: no capabilities) reach a socket there. As root, another user's 0700
 * directory (their /tmp/ssh-* agent, their /run/user/UID) is out of reach of both. Errs towards
 * yes, where a mask that cannot be made fails the launch (closed): the group bits are taken as
 * they are without asking whether the caller is in the group, since they also bound every ACL entry.
 */
export function sandboxCanSearch(st: Stats, uid: number, gid: number): boolean {
  // Capabilities in a user namespace apply to an inode whose owner and group are both mapped.
  if (st.uid === uid && st.gid === gid) return true;
  if (st.uid === uid) return (st.mode & 0o100) !== 0;
  return (st.mode & 0o011) !== 0;
}

/** Whether every directory from `root` (exclusive) down to `p`'s parent can be searched (sandboxCanSearch). */
function reachable(p: string, root: string, canSearch: (dir: string) => boolean): boolean {
  for (let d = path.dirname(p); d !== root && isWithin(d, root); d = path.dirname(d)) if (!canSearch(d)) return false;
  return true;
}

export function planSockets(input: SocketPlanInput): SocketPlan {
  const { roots, hidden, granted, areas } = input;
  const uid = process.getuid?.() ?? -1;
  const gid = process.getegid?.() ?? -1;
  const canSearch = (dir: string) => {
    const st = lstatOrNull(dir);
    return st !== null && st.isDirectory() && sandboxCanSearch(st, uid, gid);
  };
  const isHidden = (p: string) => hidden.some((h) => isWithin(p, h));
  const found = new Set<string>();
  for (const root of roots) {
    if (isHidden(root)) continue;
    if (lstatOrNull(root)?.isSocket()) {
      found.add(root);
      continue;
    }
    // Another bound tree below this one is walked on its own, with its own limits.
    const skip = (dir: string) => isHidden(dir) || (dir !== root && roots.includes(dir)) || !canSearch(dir);
    const parts = areaParts(root, areas);
    for (const part of parts) {
      if (isHidden(part) || !lstatOrNull(part)?.isDirectory()) continue;
      const w = walkSockets(part, skip, SOCKET_WALK);
      if (w.stopped !== undefined) return { masks: [], granted: [], incomplete: { root, part, stopped: w.stopped } };
      for (const s of w.sockets) found.add(s);
    }
  }
  for (const p of input.bound) {
    const real = realSocket(p);
    const root = real && roots.filter((r) => isWithin(real, r)).sort((a, b) => b.length - a.length)[0];
    if (real && root && reachable(real, root, canSearch)) found.add(real);
  }
  const masks: string[] = [];
  const kept: string[] = [];
  for (const s of [...found].sort()) {
    if (isHidden(s)) continue;
    (granted.has(s) ? kept : masks).push(s);
  }
  return { masks, granted: kept };
}
