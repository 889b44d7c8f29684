/**
 * The files a rule's path patterns name, by identity (dev:ino), as they are when the sandbox
 * starts. Why: the rules match canonical paths, and inside a writable grant the sandbox can
 * give a file another canonical path without reading it: a hard link (`ln secrets/key x`)
 * or a rename (`mv secrets s2`) is not an open, so neither is an event. Reading `x` afterwards
 * is still reading the secret. With this map the rules decider treats an open of a known file
 * as an access to the path it had at launch too (rules-decider.ts), so both the trigger and
 * the revocation follow the file, whatever it is called now.
 *
 * The same for exec patterns: `ln tools/deploy d2; ./d2` (or `mv tools/deploy d3`) runs the same
 * program, so the exec is decided on what it had been called at launch too.
 *
 * Covered: files that exist under a pattern at launch (the secrets a trigger is about).
 * Not covered: a file created later under a pattern and then linked or renamed out before it
 * is read (it held nothing at launch: the agent wrote it itself). Host I/O, run at launch.
 */
import { lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import type { Rule } from '../rules/index.js';
import { matchPath, pathShape } from '../rules/pattern.js';

/** Entries visited at most, over all patterns: a pattern over a huge tree is refused, not half-covered. */
export const MAX_ALIAS_WALK = 200_000;

export type Aliases = [fileId: string, paths: string[]][];

/**
 * Calls `file(path, "dev:ino")` for each regular file at or below `root` (symlinks not
 * followed), counting every entry visited in `budget.visited`; false once that passes `max`.
 */
function walkFiles(root: string, budget: { visited: number }, max: number, file: (p: string, id: string, st: BigIntStats) => void): boolean {
  const stack = [root];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (++budget.visited > max) return false;
    let st;
    try {
      st = lstatSync(p, { bigint: true });
    } catch {
      continue; // absent or unreadable: nothing Ward could name either
    }
    if (st.isDirectory()) {
      // Not /proc, /sys, /dev: the sandbox has its own, and patterns cannot name them usefully.
      if (p === '/proc' || p === '/sys' || p === '/dev') continue;
      let names: string[] = [];
      try {
        names = readdirSync(p);
      } catch {
        continue;
      }
      for (const n of names) stack.push(p === '/' ? `/${n}` : path.join(p, n));
    } else if (st.isFile()) file(p, `${st.dev}:${st.ino}`, st);
  }
  return true;
}

export function ruleFileAliases(rules: readonly Rule[], max = MAX_ALIAS_WALK): { aliases: Aliases } | { tooMany: string } {
  const patterns = new Set<string>();
  for (const r of rules) for (const m of [...r.after, ...r.revoke]) if (m.access !== 'connect') patterns.add(m.target);
  const byId = new Map<string, Set<string>>();
  const budget = { visited: 0 };
  for (const pattern of patterns) {
    const shape = pathShape(pattern);
    const complete = walkFiles(shape.kind === 'subtree' ? shape.path : shape.dir, budget, max, (p, id) => {
      if (!matchPath(pattern, p)) return;
      let set = byId.get(id);
      if (!set) byId.set(id, (set = new Set()));
      set.add(p);
    });
    if (!complete) return { tooMany: pattern };
  }
  return { aliases: [...byId].map(([id, set]) => [id, [...set]]) };
}

/**
 * The identities of the files in the directory entries of `filesystem.append` and
 * `filesystem.visible` (an entry that is a file is known by its own identity, worker.ts). Why:
 * a file inside such a directory can have another name made on the host before the run (a hard
 * link elsewhere in a granted tree); opened by that name, only its identity says it is the
 * append-only log or the visible-only key. In the sandbox no second name can be made (each
 * entry is its own bind: EXDEV across it, EACCES or EROFS inside it, and no directory above
 * it can be renamed). Host I/O, run at launch; null when the entries hold more than `max`.
 */
export function entryFileIds(entries: readonly string[], max = MAX_ALIAS_WALK): string[] | null {
  const ids = new Set<string>();
  const budget = { visited: 0 };
  for (const e of entries) if (!walkFiles(e, budget, max, (_p, id) => ids.add(id))) return null;
  return [...ids];
}

/**
 * The files of `filesystem.visible` entries (an entry itself, or a regular file inside a
 * directory entry) that the kernel could run without any exec naming them, with why. A script's
 * `#!` line and an ELF's PT_INTERP make the kernel open the interpreter they name itself, inside
 * the exec of *another* file: no open or exec of the visible file reaches the supervisor, and the
 * interpreter's code is then in the process's memory (/proc/PID/mem of a child copies it out).
 * What still stops that open is the kernel's: an execute permission bit (MAY_EXEC) and
 * Landlock's execute right. So a visible file with an execute bit is refused when `executable(p)`
 * (an execute grant reaches it, or Landlock may not be in force) or when it has another name (a
 * hard link, which may be under an execute grant). Host I/O, run at launch, after entryFileIds
 * (which bounds the walk).
 */
export function runnableVisibleFiles(entries: readonly string[], executable: (p: string) => boolean, max = MAX_ALIAS_WALK): { path: string; why: string }[] {
  const out: { path: string; why: string }[] = [];
  const budget = { visited: 0 };
  for (const e of entries) {
    walkFiles(e, budget, max, (p, _id, st) => {
      if ((st.mode & 0o111n) === 0n) return;
      if (executable(p)) out.push({ path: p, why: 'execute is granted there' });
      else if (st.nlink > 1n) out.push({ path: p, why: `it has ${st.nlink} hard links, and another name may be where execute is granted` });
    });
  }
  return out;
}
