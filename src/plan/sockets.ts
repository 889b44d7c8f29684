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
 *   - the kernel's list of sockets bound to a path in Ward's network namespace, wherever they are
 *     (sock_diag, unix-diag.ts: each with its node's identity; /proc/net/unix, names only, where
 *     that is missing). A name is where the socket was bound, not always where its node is now
 *     (renamed, linked, or relative to the binder's directory of the moment): the node is then
 *     looked for by identity in the name's directory, then in the trees the user grants;
 *   - a walk of the granted trees' parts in the places sockets live (SOCKET_AREAS,
 *     $XDG_RUNTIME_DIR), which must see everything there, or the plan is refused: a server there
 *     may be in another network namespace (a container's) and so absent from /proc/net/unix.
 * Other trees are not walked: a few milliseconds each, for every launch, against sockets whose
 * server is in another network namespace and outside those places (SECURITY-MODEL.md, gaps).
 */
import { lstatSync, opendirSync, readdirSync, readFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { lstatOrNull, realOr } from '../paths.js';
import { isWithin } from '../policy/expand.js';
import { readMountTable, type MountTable } from './aliases.js';
import { unixDiag, userDev } from './unix-diag.js';

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

/** A socket bound to a path in Ward's network namespace. */
export interface BoundSocket {
  /** The name it was bound by: relative, or stale once the server renamed or linked its node. */
  name: string;
  /** Its node's "dev:ino" (unix-diag.ts), when the kernel could say. */
  node?: string;
  /** The socket's own inode, as `ss -x` shows it. */
  inode?: number;
}

/**
 * The sockets bound to a path in Ward's network namespace: from sock_diag, with their nodes,
 * else (`why` says why) from /proc/net/unix, by name alone.
 */
export function boundSockets(): { sockets: BoundSocket[]; why?: string } {
  const d = unixDiag();
  if (typeof d !== 'string') return { sockets: d };
  return { sockets: boundSocketPaths().map((name) => ({ name })), why: d };
}

/** One record of /proc/net/unix: "Num: RefCount Protocol Flags Type St Inode[ Path]" (fixed fields). */
const PROC_NET_UNIX_RECORD = /^[0-9a-fA-F]+: [0-9A-F]{8} [0-9A-F]{8} [0-9A-F]{8} [0-9A-F]{4} [0-9A-F]{2} +\d+(?: (.*))?$/;

/**
 * The path names in /proc/net/unix (`text`, when given, instead of the file), absolute and
 * relative; abstract ones (@...) left out. The kernel prints a name's bytes as they are, so a
 * newline in one starts a line that is no record: it continues the name above. (A name holding a
 * whole line shaped like a record would still be cut there: sock_diag, which gives names as
 * bytes, is what boundSockets uses when it can.)
 */
export function boundSocketPaths(text?: string): string[] {
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/proc/net/unix', 'utf8');
    } catch {
      return []; // no /proc: the walks alone decide
    }
  }
  const lines = t.split('\n').slice(1);
  const out = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const m = PROC_NET_UNIX_RECORD.exec(lines[i]!);
    if (!m || m[1] === undefined || m[1] === '' || m[1].startsWith('@')) continue;
    let name = m[1];
    // The file ends with a newline: its last, empty line continues nothing.
    for (let j = i + 1; j < lines.length && !PROC_NET_UNIX_RECORD.test(lines[j]!) && !(j === lines.length - 1 && lines[j] === ''); j++) name += `\n${lines[j]}`;
    out.add(name);
  }
  return [...out];
}

export interface WalkOptions {
  /** Entries seen so far, shared by walks that count against one limit. */
  budget?: { seen: number };
  /** Called with each socket found: true ends the walk there (complete: what was wanted is found). */
  enough?: (socket: string) => boolean;
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
export function walkSockets(root: string, skip: (dir: string) => boolean, limit: WalkLimit, opts: WalkOptions = {}): WalkResult {
  const sockets: string[] = [];
  const queue: [string, number][] = [[root, 0]];
  const budget = opts.budget ?? { seen: 0 };
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
        if (++budget.seen > limit.entries) return { sockets, stopped: `more than ${limit.entries} entries` };
        const p = path.join(dir, e.name);
        if (e.isSocket()) {
          sockets.push(p);
          if (opts.enough?.(p)) return { sockets, stopped: undefined };
        } else if (e.isDirectory() && !skip(p)) {
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
  /** The bound sockets of Ward's network namespace (boundSockets()). */
  bound: readonly BoundSocket[];
  /**
   * Real paths of the trees searched for a socket not at its bound name (searchMoved); all of
   * `roots` when not given.
   */
  searched?: readonly string[];
  /** The host's mount table (the plan's, read once); read here when not given. */
  table?: () => MountTable;
}

export interface SocketPlan {
  /** Sockets to mask, by real path, sorted. */
  masks: string[];
  /** Sockets granted by name (left reachable). */
  granted: string[];
  /** A bound tree's part in a socket area that the walk could not finish: the plan must be refused. */
  incomplete?: { root: string; part: string; stopped: string };
  /**
   * Sockets not at the name they were bound by, which the search of the bound trees could not
   * finish finding (`root`: where it stopped): the plan must be refused.
   */
  lost?: { root: string; stopped: string; sockets: BoundSocket[] };
  /** Bound names with no node known (no sock_diag) whose directory is gone: where the socket is, nothing says. */
  stale?: string[];
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
  const add = (real: string) => {
    const root = roots.filter((r) => isWithin(real, r)).sort((a, b) => b.length - a.length)[0];
    if (root && reachable(real, root, canSearch)) found.add(real);
  };
  const moved: Moved[] = [];
  const stale: string[] = [];
  const named = new Set<string>();
  for (const b of input.bound) {
    const at = byName(b) ?? [];
    for (const p of at) {
      add(p);
      named.add(p);
    }
    if (!path.isAbsolute(b.name) || isProcSelf(b.name)) {
      // Bound by a name that says nothing of where (relative, or the binder's own /proc/self).
      if (at.length === 0) moved.push({ socket: b, left: 1 });
    } else if (b.node !== undefined && at.length > 0) {
      // A node has as many names as links: another may lie in a bound tree (a link left there).
      const links = lstatOrNull(at[0]!)?.nlink ?? 1;
      if (at.length < links) moved.push({ socket: b, left: links - at.length });
    } else if (at.length === 0 && lstatOrNull(path.dirname(b.name)) === null) stale.push(b.name);
    // An absolute name no socket answers to, at it or in its directory: its file was removed (a
    // cleaned /tmp: then nothing can connect to it by any name), or it was moved to another
    // directory after the bind, which is not followed. Searching the grants for it instead made
    // every launch in a workspace over the walk's bound refuse while one server whose file had
    // been removed listened anywhere on the host (SECURITY-MODEL.md).
  }
  if (moved.length > 0) {
    const search = searchMoved(moved, named, input.searched ?? roots, isHidden, canSearch, input.table ?? readMountTable);
    if (search.lost) return { masks: [], granted: [], lost: search.lost };
    search.found.forEach(add);
  }
  const masks: string[] = [];
  const kept: string[] = [];
  for (const s of [...found].sort()) {
    if (isHidden(s)) continue;
    (granted.has(s) ? kept : masks).push(s);
  }
  return { masks, granted: kept, stale };
}

/** A name under /proc/self or /proc/thread-self: it meant the binder's own descriptors, not Ward's. */
function isProcSelf(name: string): boolean {
  return isWithin(name, '/proc/self') || isWithin(name, '/proc/thread-self');
}

/** "dev:ino" of `p`'s node (ino's low 32 bits, as sock_diag gives it), or undefined. */
export function nodeId(p: string): string | undefined {
  try {
    const st = lstatSync(p, { bigint: true });
    return `${st.dev}:${st.ino & 0xffffffffn}`;
  } catch {
    return undefined;
  }
}

function deniedLookup(p: string): boolean {
  try {
    lstatSync(p);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EACCES';
  }
}

/**
 * Where `b`'s node is, found from its name (real paths), or undefined. At the name itself when
 * the node there is `b`'s (any socket, when the node is not known); else in the name's directory,
 * where a server that renames or links its socket into place (OpenSSH's ControlMaster) leaves it:
 * the entry that is `b`'s node, or, when that is not known, every socket there.
 */
function byName(b: BoundSocket): string[] | undefined {
  // A relative name meant the binder's directory of the moment, /proc/self the binder itself.
  if (!path.isAbsolute(b.name) || isProcSelf(b.name)) return undefined;
  // A name Ward may not look up (another user's private directory, another user's process's
  // descriptors under /proc) is out of the sandbox's reach too, which has no more rights than Ward.
  if (deniedLookup(b.name)) return [];
  const real = realSocket(b.name);
  if (real && (b.node === undefined || nodeId(real) === b.node)) return [real];
  const dir = realOr(path.dirname(b.name));
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EACCES' ? [] : undefined;
  }
  const socks = names.map((n) => path.join(dir, n)).filter((p) => lstatOrNull(p)?.isSocket());
  const hits = b.node === undefined ? socks : socks.filter((p) => nodeId(p) === b.node);
  return hits.length > 0 ? hits : undefined;
}

/** A socket with `left` names not found at or beside its bound name. */
interface Moved {
  socket: BoundSocket;
  left: number;
}

/**
 * Finds the nodes of sockets not at their bound name, by walking the bound trees on their nodes'
 * devices (a node lies on one device; a mount of it inside a tree of another is a start of its
 * own), until each is found or the trees are seen whole: a node found in none is not reachable
 * (in a hidden place, in a tree not bound, or unlinked). Without a node to look for (no
 * sock_diag), every tree is walked and every socket in it counts. One limit (SOCKET_WALK) for the
 * whole search; reaching it leaves the sockets `lost`, for the plan to refuse.
 */
function searchMoved(
  moved: readonly Moved[],
  named: ReadonlySet<string>,
  roots: readonly string[],
  isHidden: (p: string) => boolean,
  canSearch: (dir: string) => boolean,
  table: () => MountTable,
): { found: string[]; lost?: NonNullable<SocketPlan['lost']> } {
  const blind = moved.some((m) => m.socket.node === undefined);
  const wanted = new Map(moved.filter((m) => m.socket.node !== undefined).map((m) => [m.socket.node!, { ...m }]));
  const devs = new Set([...wanted.keys()].map((k) => k.split(':')[0]!));
  const devOf = (p: string) => {
    try {
      return String(lstatSync(p, { bigint: true }).dev);
    } catch {
      return undefined;
    }
  };
  const onDevice = (p: string) => blind || devs.has(devOf(p) ?? '');
  const top = (p: string) => roots.filter((r) => isWithin(p, r)).sort((a, b) => b.length - a.length)[0];
  const starts = [
    ...roots.filter((r) => !isHidden(r) && lstatOrNull(r)?.isDirectory() && canSearch(r) && onDevice(r)),
    ...(blind ? [] : mountTable(table()).filter((m) => devs.has(String(m.dev)) && top(m.dest) !== undefined && !isHidden(m.dest) && canSearch(m.dest)).map((m) => m.dest)),
  ];
  // Deeper trees first: a server's socket is likelier in a home or project than in /usr.
  const order = [...new Set(starts)].sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? -1 : 1));
  const startSet = new Set(order);
  const found: string[] = [];
  const budget = { seen: 0 };
  const enough = (p: string) => {
    if (named.has(p)) return false;
    if (blind) {
      found.push(p);
      return false;
    }
    const id = nodeId(p);
    const w = id === undefined ? undefined : wanted.get(id);
    if (!w) return false;
    found.push(p);
    if (--w.left === 0) wanted.delete(id!);
    return wanted.size === 0;
  };
  for (const start of order) {
    if (!blind && wanted.size === 0) break;
    const skip = (dir: string) => startSet.has(dir) || isHidden(dir) || !canSearch(dir) || !onDevice(dir);
    const w = walkSockets(start, skip, SOCKET_WALK, { budget, enough });
    if (w.stopped !== undefined && (blind || wanted.size > 0)) {
      return { found, lost: { root: top(start) ?? start, stopped: w.stopped, sockets: (blind ? moved.filter((m) => m.socket.node === undefined) : [...wanted.values()]).map((m) => m.socket) } };
    }
  }
  return { found };
}

export interface MountEntry {
  /** The mount point, octal escapes decoded. */
  dest: string;
  type: string;
  /** Its device, as stat(2) gives st_dev. */
  dev: bigint;
}

/** The mounts of `table` (Ward's mount namespace's, aliases.ts) with their devices as stat(2) gives st_dev. */
export function mountTable(table: MountTable): MountEntry[] {
  return table.mounts.map((m) => {
    const [major, minor] = m.dev.split(':').map(Number) as [number, number];
    return { dest: m.dest, type: m.type, dev: userDev((major << 20) | minor) };
  });
}
