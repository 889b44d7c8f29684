/**
 * The static policy, as the supervisor must apply it to every file it opens on the sandbox's
 * behalf.
 *
 * Why this exists: an emulated open runs in Ward's process, outside the sandbox's Landlock
 * domain. What still applies by construction:
 *   - the mount layer: the supervisor resolves the path from the sandbox's own root
 *     (/proc/PID/root with RESOLVE_IN_ROOT), so only what is bound into the sandbox can be
 *     reached, masks hide what they hide, and read-only binds refuse writes (EROFS);
 *   - permission bits: the worker thread drops every capability of its own thread (capset on
 *     itself only) when Ward runs as root, so it opens as a uid 0 without CAP_DAC_OVERRIDE,
 *     exactly like the sandbox; unprivileged, Ward's uid is the sandbox's.
 * What does not apply by itself is Landlock: its rules restrict the sandbox's threads, not
 * Ward's. So the supervisor checks the opened file's path (read back from the kernel after the
 * open, in the sandbox's view) against the same rule list the launcher gave Landlock, with
 * Landlock's semantics: rights add up along the path, a right no rule grants is refused.
 * A call this check refuses is answered EACCES, as Landlock would.
 */
import type { LandlockRule } from '../launcher/launcher.js';

export type Access = 'read' | 'write' | 'read-write' | 'path';

/** The rights letters (r, w, x, d) all rules on `p` or its ancestors grant together. */
export function grantedRights(rules: readonly LandlockRule[], p: string): Set<string> {
  const got = new Set<string>();
  for (const r of rules) {
    const base = r.path.length > 1 && r.path.endsWith('/') ? r.path.slice(0, -1) : r.path;
    if (p === base || base === '/' || p.startsWith(base + '/')) for (const c of r.rights) got.add(c);
  }
  return got;
}

/**
 * Whether Landlock, given `rules`, would let the sandbox open `p` for `access`. `rules` null
 * means Landlock is not in force for this run (mode off or unavailable): the mount layer and
 * permission bits are then the whole static policy, and they applied during the open.
 * O_PATH opens are not checked by Landlock either: they give no access to the contents.
 */
export function staticAllows(rules: readonly LandlockRule[] | null, p: string, access: Access): boolean {
  if (rules === null || access === 'path') return true;
  const got = grantedRights(rules, p);
  if ((access === 'read' || access === 'read-write') && !got.has('r')) return false;
  if ((access === 'write' || access === 'read-write') && !got.has('w')) return false;
  return true;
}
