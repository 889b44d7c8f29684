/**
 * The files a rule's path patterns name, by identity (dev:ino), as they are when the sandbox
 * starts. Why: the rules match canonical paths, and inside a writable grant the sandbox can
 * give a file another canonical path without reading it: a hard link (`ln secrets/key x`)
 * or a rename (`mv secrets s2`) is not an open, so neither is an event. Reading `x` afterwards
 * is still reading the secret. With this map the rules decider treats an open of a known file
 * as an access to the path it had at launch too (rules-decider.ts), so both the trigger and
 * the revocation follow the file, whatever it is called now.
 *
 * Covered: files that exist under a pattern at launch (the secrets a trigger is about).
 * Not covered: a file created later under a pattern and then linked or renamed out before it
 * is read (it held nothing at launch: the agent wrote it itself). Host I/O, run at launch.
 */
import { lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Rule } from '../rules/index.js';
import { matchPath, pathShape } from '../rules/pattern.js';

/** Entries visited at most, over all patterns: a pattern over a huge tree is refused, not half-covered. */
export const MAX_ALIAS_WALK = 200_000;

export type Aliases = [fileId: string, paths: string[]][];

export function ruleFileAliases(rules: readonly Rule[], max = MAX_ALIAS_WALK): { aliases: Aliases } | { tooMany: string } {
  const patterns = new Set<string>();
  for (const r of rules) for (const m of [...r.after, ...r.revoke]) if (m.access !== 'connect' && m.access !== 'exec') patterns.add(m.target);
  const byId = new Map<string, Set<string>>();
  let visited = 0;
  for (const pattern of patterns) {
    const shape = pathShape(pattern);
    const root = shape.kind === 'subtree' ? shape.path : shape.dir;
    const stack = [root];
    while (stack.length > 0) {
      const p = stack.pop()!;
      if (++visited > max) return { tooMany: pattern };
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
      } else if (st.isFile() && matchPath(pattern, p)) {
        const id = `${st.dev}:${st.ino}`;
        let set = byId.get(id);
        if (!set) byId.set(id, (set = new Set()));
        set.add(p);
      }
    }
  }
  return { aliases: [...byId].map(([id, set]) => [id, [...set]]) };
}
