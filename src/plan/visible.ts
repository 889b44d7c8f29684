/**
 * What the sandbox a mount plan builds can see of a host path. Used wherever Ward keeps
 * something of its own out of the sandbox (the audit log, a brokered credential's file) and
 * must check it against the plan that will run, on real paths, as the plan binds them, and under
 * the other names the host's mounts give them.
 */
import { isWithin } from '../policy/expand.js';
import { aliasesOf, readMountTable, type MountTable } from './aliases.js';
import type { MountOp } from './mounts.js';

/**
 * The bind through which the sandbox would see `file`, under its own name or another one the
 * host's mount table gives it (a bind mount or second mount of its filesystem: aliases.ts), or
 * null.
 */
export function bindShowing(ops: MountOp[], file: string, table: MountTable = tableFor(ops)): Extract<MountOp, { kind: 'bind' }> | null {
  for (const name of [file, ...aliasesOf(file, table)]) {
    const b = bindShowingName(ops, name);
    if (b) return b;
  }
  return null;
}

/** The host's mount table, read once per plan's operations: a launch asks about a dozen paths. */
const tables = new WeakMap<MountOp[], MountTable>();

function tableFor(ops: MountOp[]): MountTable {
  let t = tables.get(ops);
  if (!t) tables.set(ops, (t = readMountTable()));
  return t;
}

/**
 * The deepest mount operation covering the path decides: a bind shows the host's file; a mask, a
 * private tmpfs, or nothing at all (the empty root) does not.
 */
function bindShowingName(ops: MountOp[], file: string): Extract<MountOp, { kind: 'bind' }> | null {
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
