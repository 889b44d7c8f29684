/**
 * Other names the host's mount table gives a place. A directory bind-mounted elsewhere (an fstab
 * line `/data/home /home none bind`, `mount --bind ~ /srv/alias`) or a btrfs subvolume mounted a
 * second time is the same files under another path, and realpath(3) cannot see it: it resolves
 * symlinks, not mounts. Every check that compares real paths (deny wins, masks, the writable-home
 * guard) would then let a grant of the other name expose what it refuses by the first.
 *
 * A place is known here by filesystem identity: the device of the mount it lies on (mountinfo's
 * major:minor, which is the superblock's, so every subvolume of one btrfs shares it) and its path
 * from that filesystem's root (the mount's `root` field plus the rest of the path). Any other
 * mount of the same device whose root holds that path shows the place at mount point + remainder,
 * unless a later mount covers that spot.
 *
 * The work is bounded by the mount table: mounts are indexed by device and by mount point, so a
 * place costs one lookup per path component plus one per mount of its own device.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isWithin } from '../policy/expand.js';

export interface HostMount {
  id: string;
  parent: string;
  /** major:minor of the filesystem (the superblock's device). */
  dev: string;
  /** The directory of that filesystem this mount shows at `dest`. */
  root: string;
  dest: string;
  type: string;
  /** The filesystem's own (super block) options, such as cgroup v1's controllers. */
  options: string[];
}

export interface MountTable {
  mounts: HostMount[];
  byDest: Map<string, HostMount[]>;
  byDev: Map<string, HostMount[]>;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/self/mountinfo text (proc(5)); lines it cannot read are skipped. */
export function parseMountinfo(text: string): MountTable {
  const mounts: HostMount[] = [];
  const byDest = new Map<string, HostMount[]>();
  const byDev = new Map<string, HostMount[]>();
  for (const line of text.split('\n')) {
    const parts = line.split(' ');
    const sep = parts.indexOf('-');
    if (sep < 6 || parts.length < sep + 2) continue;
    const m: HostMount = { id: parts[0]!, parent: parts[1]!, dev: parts[2]!, root: unescape(parts[3]!), dest: unescape(parts[4]!), type: parts[sep + 1]!, options: (parts[sep + 3] ?? '').split(',') };
    mounts.push(m);
    (byDest.get(m.dest) ?? byDest.set(m.dest, []).get(m.dest)!).push(m);
    (byDev.get(m.dev) ?? byDev.set(m.dev, []).get(m.dev)!).push(m);
  }
  return { mounts, byDest, byDev };
}

/** This process's mount table; empty without /proc (then only the path checks apply). */
export function readMountTable(): MountTable {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    /* no /proc */
  }
  return parseMountinfo(text);
}

/**
 * The mount whose files are seen at `p`: the one on the longest mount point above it, and of
 * mounts stacked on one mount point the uppermost (the one no other there is mounted on).
 */
export function mountAt(p: string, table: MountTable): HostMount | undefined {
  for (let dir = p; ; dir = path.posix.dirname(dir)) {
    const here = table.byDest.get(dir);
    if (here && here.length > 0) return here.find((m) => !here.some((o) => o.parent === m.id)) ?? here.at(-1);
    if (dir === '/') return undefined;
  }
}

/** `p` (an absolute real path) as (device, path from the filesystem's root). */
export function identityOf(p: string, table: MountTable): { dev: string; path: string } | undefined {
  const m = mountAt(p, table);
  if (!m) return undefined;
  return { dev: m.dev, path: path.posix.join(m.root, path.posix.relative(m.dest, p)) };
}

/**
 * Every other path at which the host shows the place at the real path `p` (a second mount of
 * its filesystem whose root holds it, not covered by a later mount there). A place that does
 * not exist gets the names it would have if created.
 */
export function aliasesOf(p: string, table: MountTable): string[] {
  const id = identityOf(p, table);
  if (!id) return [];
  const out: string[] = [];
  for (const m of table.byDev.get(id.dev) ?? []) {
    if (!isWithin(id.path, m.root)) continue;
    const at = path.posix.join(m.dest, path.posix.relative(m.root, id.path));
    if (at === p || out.includes(at) || mountAt(at, table) !== m) continue;
    out.push(at);
  }
  return out;
}
