/**
 * What the sandbox a mount plan builds can see of a host path. Used wherever Ward keeps
 * something of its own out of the sandbox (the audit log, a brokered credential's file) and
 * must check it against the plan that will run, on real paths, as the plan binds them.
 */
import { isWithin } from '../policy/expand.js';
import type { MountOp } from './mounts.js';

/**
 * The bind through which the sandbox would see `file`, or null. The deepest mount operation
 * covering a path decides: a bind shows the host's file; a mask, a private tmpfs, or nothing at
 * all (the empty root) does not.
 */
export function bindShowing(ops: MountOp[], file: string): Extract<MountOp, { kind: 'bind' }> | null {
  let deepest: MountOp | undefined;
  for (const op of ops) {
    if (op.kind === 'symlink' || !isWithin(file, op.dest)) continue;
    if (!deepest || op.dest.length >= deepest.dest.length) deepest = op;
  }
  return deepest?.kind === 'bind' ? deepest : null;
}

/** Would the sandbox this plan builds see `file`? */
export function visibleInSandbox(ops: MountOp[], file: string): boolean {
  return bindShowing(ops, file) !== null;
}

/** Could the sandbox this plan builds change `file` (or, for a directory, its entries)? */
export function writableInSandbox(ops: MountOp[], file: string): boolean {
  return bindShowing(ops, file)?.writable === true;
}
