/**
 * File-permission questions several checks ask: who owns a path, who may write
 * it, and whether someone else could swap it by renaming a directory above it.
 */
import { statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { realOr } from '../paths.js';

/** `0644`-style octal of the permission bits (with setuid/setgid/sticky when set). */
export function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

export function statOrNull(p: string): Stats | null {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

// One lstat-or-null for the planner, the launcher and the doctor.
export { lstatOrNull } from '../paths.js';

export const isWorldWritable = (st: Stats): boolean => (st.mode & 0o002) !== 0;
export const isGroupWritable = (st: Stats): boolean => (st.mode & 0o020) !== 0;
export const isSticky = (st: Stats): boolean => (st.mode & 0o1000) !== 0;

/** `/a/b/c` -> `/a/b`, `/a`, `/`. */
export function ancestors(p: string): string[] {
  const out: string[] = [];
  let dir = path.dirname(p);
  for (;;) {
    out.push(dir);
    const up = path.dirname(dir);
    if (up === dir) return out;
    dir = up;
  }
}

export interface WritableFinding {
  path: string;
  mode: string;
  why: string;
}

/**
 * Why others could change what `p` is: the path itself is writable by others
 * (o+w: anyone may add, remove or rewrite), or a directory above it (by its
 * written name, or by its real path when a symlink is involved) is
 * world-writable without the sticky bit (anyone may rename the entry away and
 * put their own in its place). A sticky world-writable parent such as /tmp only
 * lets the entry's owner rename it, so it is not a finding by itself.
 */
export function worldWritableReasons(p: string): WritableFinding[] {
  const out: WritableFinding[] = [];
  const st = statOrNull(p);
  if (st && isWorldWritable(st)) {
    out.push({ path: p, mode: octal(st.mode), why: `${p} is writable by every user (mode ${octal(st.mode)}${isSticky(st) ? ', sticky' : ''})` });
  }
  const real = realOr(p); // missing: the written name is all there is
  const seen = new Set<string>();
  for (const dir of [...ancestors(p), ...(real !== p ? ancestors(real) : [])]) {
    if (seen.has(dir) || dir === p) continue;
    seen.add(dir);
    const d = statOrNull(dir);
    if (!d || !d.isDirectory()) continue;
    if (isWorldWritable(d) && !isSticky(d)) {
      out.push({ path: dir, mode: octal(d.mode), why: `${dir}, above it, is world-writable without the sticky bit (mode ${octal(d.mode)}): anyone can replace what is below it` });
    }
  }
  return out;
}
