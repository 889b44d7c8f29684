/**
 * Translation validation for the filesystem: from the compiled mount ops and Landlock rules
 * (not from the policy), compute what a path resolves to inside the sandbox, and compare
 * that with what the effective policy grants.
 *
 * The model of the sandbox's view, for a path inside it:
 * - Components are resolved one by one, as the kernel does. For each prefix, the mount that
 *   decides it is the LAST op (in the plan's order, which is bwrap's argv order) whose dest is
 *   the prefix or one of its ancestors: a later mount over an ancestor hides earlier ones
 *   below it, as real mount stacking does.
 * - bind: the prefix is the host file `src + rest`; a host symlink met there is followed, and
 *   an absolute link target is resolved inside the sandbox (from its root), not on the host.
 *   This is what makes a symlink in the workspace pointing at ~/.ssh harmless.
 * - symlink op: followed the same way. tmpfs: private and empty (no host content).
 *   mask-dir / mask-file: the path exists but shows nothing; nothing exists below it.
 *   proc / dev: the sandbox's own; not checked (no policy can grant them).
 * - No op: the root tmpfs; a directory exists only where a mount point lies below it.
 * Landlock rights of the resolved path are the union of the rights of every rule on it or on
 * an ancestor (Landlock rights add up down the tree; a rule can never take rights away).
 *
 * What the policy says, for a host path H (real, canonical): denied when H is at or below a
 * `deny` entry (by its name or its real path); otherwise the union of the rights of every grant
 * at or above it (read r, write rw, execute rx, append r), ignoring grants inside a denied or
 * visible-only path (deny wins, and so does visible). Two kinds of path are enforced by the
 * supervisor together with the kernel (supervised mode, src/supervisor/worker.ts), and have
 * their own shapes:
 * - append-only (at or below an `append` entry, not also granted write): its own bind,
 *   WRITABLE (so the supervisor's O_APPEND open from the sandbox's root can write at all), with
 *   Landlock read-only for the sandbox (no private tmpfs rw above it either: then no kernel layer
 *   would keep the sandbox from rewriting it); the plan's rules.append lists it, and the plan
 *   supervises every call that could write it other than by appending (APPEND_NEEDS below).
 * - visible-only (at or below a `visible` entry, not denied): present, on a READ-ONLY bind of
 *   its own host content (stat shows the real file), with no Landlock rule at or below it (the
 *   rights of grants above it are still there: Landlock cannot subtract, which is why the
 *   supervisor must see every open); the plan's rules.visible lists it, and every open and exec
 *   is supervised unconditionally.
 *
 * Checks, each layer on its own (the point of two layers is that one holds if the other has
 * a bug):
 * - mounts: a path that reaches host content must be readable per the policy (a denied or
 *   ungranted path that is visible is a finding), and writable exactly when the policy grants
 *   write; a granted path (by the name written in the policy, or by its real name) must reach
 *   that host content.
 * - landlock (unless the policy turns Landlock off): the r/w/x rights at a path that reaches
 *   host content must equal the rights of the grants above it. Landlock cannot subtract, so a
 *   denied path inside a grant keeps the grant's rights here; the mount layer hides it. The
 *   private tmpfs dirs (/tmp, $HOME) carry rw in Landlock, and that rw is accepted for grants
 *   below them too (reported as a note, since Landlock alone then does not keep them read-only).
 * The mount layer sets no noexec, so execute is checked on the Landlock layer only.
 */
import { lstatSync, readdirSync, readlinkSync, realpathSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { Plan } from '../plan/compile.js';
import type { LandlockRule, MountOp } from '../plan/mounts.js';
import { isWithin } from '../policy/expand.js';
import { ALL_SECRET_PATHS } from '../policy/secrets.js';
import type { Finding } from './finding.js';

export interface MountValidationOptions {
  /** More paths to check (e.g. symlinks a test placed in the workspace). */
  extraPaths?: readonly string[];
}

export interface MountValidation {
  findings: Finding[];
  /** Distinct paths checked. */
  paths: number;
  /** Facts a reviewer should know that are not failures. */
  notes: string[];
}

/** What a path is inside the sandbox. */
export type SandboxView =
  | { kind: 'host'; path: string; host: string; writable: boolean; bind: string }
  | { kind: 'private'; path: string }
  | { kind: 'masked'; path: string }
  | { kind: 'special'; path: string }
  | { kind: 'absent'; path: string; why: string };

const SPECIAL = ['/proc', '/dev', '/sys'];
const MAX_LINKS = 40;
const RIGHTS_OF = { read: 'r', write: 'rw', execute: 'rx', append: 'r' } as const;

/**
 * What supervised mode must decide for an append-only file, written here from what can change
 * a file other than by appending to it (not taken from the planner, src/plan/rules.ts, so that a
 * planner that forgets one is caught):
 * - opens that could write: the supervisor opens with O_APPEND and injects the fd. open and
 *   openat may be notified under the write-flags condition (conditions.writeOpens), openat2 and
 *   creat never are (openat2's flags are in memory; creat always writes);
 * - calls on an fd that shorten, rewrite or un-append it: ftruncate, fallocate (punch hole,
 *   collapse range), fcntl F_SETFL (clears O_APPEND; may be notified under conditions.setfl),
 *   pwritev2 (RWF_NOAPPEND), io_setup (Linux AIO, whose RWF_NOAPPEND is in memory);
 * - writes by path, which the writable bind would otherwise let through: truncate, and, for a
 *   directory entry, everything that creates, removes or renames below it;
 * - metadata, which Landlock does not cover at all: chmod, chown, utimes, xattrs, by path and
 *   by fd.
 */
const APPEND_OPENS = ['openat2', 'creat'];
const APPEND_FD = ['ftruncate', 'fallocate', 'pwritev2', 'io_setup'];
const APPEND_PATH = [
  'truncate', 'unlink', 'unlinkat', 'rmdir', 'rename', 'renameat', 'renameat2', 'link', 'linkat', 'symlink', 'symlinkat',
  'mkdir', 'mkdirat', 'mknod', 'mknodat',
  'chmod', 'fchmodat', 'fchmodat2', 'fchmod', 'chown', 'lchown', 'fchownat', 'fchown',
  'utime', 'utimes', 'futimesat', 'utimensat',
  'setxattr', 'lsetxattr', 'fsetxattr', 'setxattrat', 'removexattr', 'lremovexattr', 'fremovexattr', 'removexattrat',
];
/** Visible-only: every open (any flags: a read-only one reads it) and every exec. */
const VISIBLE_NEEDS = ['open', 'openat', 'openat2', 'creat', 'execve', 'execveat'];
/**
 * And every rename: a directory above a visible-only entry, renamed, takes the entry (its bind)
 * along to a path no entry names, where only the entry's own identity is known (not those of
 * the files in a directory entry).
 */
const VISIBLE_RENAMES = ['rename', 'renameat', 'renameat2'];
/** And every mode change: an execute bit added through a second name lets the kernel run it as a #! interpreter, unseen. */
const VISIBLE_CHMODS = ['chmod', 'fchmodat', 'fchmodat2', 'fchmod'];

export function validateMounts(plan: Plan, options: MountValidationOptions = {}): Finding[] {
  return runMountValidation(plan, options).findings;
}

export function runMountValidation(plan: Plan, options: MountValidationOptions = {}): MountValidation {
  const eff = plan.policy.effective;
  const { ops, landlock } = plan.mounts;
  const landlockOn = plan.landlock.mode !== 'off';
  const findings: Finding[] = [];
  const notes: string[] = [];
  if (!landlockOn) notes.push('Landlock is off in this policy: execute is not restricted by any layer, and the Landlock rules were not checked');

  // The policy, on real paths.
  const denied = new Set<string>();
  for (const e of eff.filesystem.deny) {
    denied.add(e.path);
    const r = realOrNull(e.path);
    if (r) denied.add(r);
  }
  const isDenied = (h: string) => [...denied].some((d) => isWithin(h, d));
  // Visible-only entries (by name and real path), unless a deny covers them (deny wins).
  const visibleRoots = new Set<string>();
  for (const e of eff.filesystem.visible) {
    for (const p of [e.path, realOrNull(e.path)]) if (p && !isDenied(p)) visibleRoots.add(p);
  }
  const isVisible = (h: string) => !isDenied(h) && [...visibleRoots].some((v) => isWithin(h, v));
  const grants: { literal: string; real: string; rights: string }[] = [];
  const appendReals = new Set<string>();
  for (const key of ['read', 'write', 'execute', 'append'] as const) {
    for (const e of eff.filesystem[key]) {
      const real = realOrNull(e.path);
      // A grant at or below a denied or visible-only path is dropped (deny and visible win).
      if (!real || SPECIAL.some((s) => isWithin(real, s)) || isDenied(real) || isVisible(real)) continue;
      grants.push({ literal: e.path, real, rights: RIGHTS_OF[key] });
      if (key === 'append') appendReals.add(real);
    }
  }
  const grantRights = (h: string) => rightsSet(grants.filter((g) => isWithin(h, g.real)).map((g) => g.rights));
  const policyRights = (h: string) => (isDenied(h) || isVisible(h) ? '' : grantRights(h));
  // Append-only: at or below an append entry, and not granted write by another entry (then it is
  // plainly writable, which the append-not-writable property reports on the policy).
  const appendRootOf = (h: string) => (grantRights(h).includes('w') ? undefined : [...appendReals].find((a) => isWithin(h, a)));
  const privateDirs = ops.filter((o) => o.kind === 'tmpfs').map((o) => o.dest);
  // An append-only path gets no write from a private tmpfs above it either: Landlock must keep
  // the sandbox from rewriting it whatever the supervisor does.
  const landlockExpected = (h: string) =>
    appendRootOf(h) !== undefined ? grantRights(h) : rightsSet([grantRights(h), privateDirs.some((d) => isWithin(h, d)) ? 'rw' : '']);

  // The paths to check.
  const samples = new Set<string>();
  const declared = new Set<string>();
  const add = (p: string | null | undefined) => {
    if (p && p.startsWith('/') && !SPECIAL.some((s) => isWithin(p, s))) samples.add(path.posix.normalize(p));
  };
  for (const key of ['read', 'write', 'execute', 'append', 'deny', 'visible'] as const) {
    for (const e of eff.filesystem[key]) {
      add(e.path);
      add(realOrNull(e.path));
      if (key !== 'deny' && key !== 'visible') declared.add(e.path);
    }
  }
  for (const s of ALL_SECRET_PATHS) add(s.startsWith('~/') ? path.posix.join(plan.home, s.slice(2)) : s);
  for (const g of grants) {
    const parent = path.posix.dirname(g.real);
    add(parent);
    add(`${g.real}.ward-verify-sibling`);
    for (const name of listSome(parent, 3, path.posix.basename(g.real))) add(path.posix.join(parent, name));
    for (const name of listSome(g.real, 3)) add(path.posix.join(g.real, name));
  }
  for (const d of [...denied, ...visibleRoots]) {
    add(path.posix.join(d, '.ward-verify-child'));
    for (const name of listSome(d, 3)) add(path.posix.join(d, name));
  }
  add(eff.workspace);
  add(plan.home);
  for (const p of options.extraPaths ?? []) add(p);

  for (const p of samples) {
    const view = resolveInSandbox(ops, p);
    const hostReal = realOrNull(p);
    const name = view.kind === 'host' && view.host !== p ? `${p} (-> ${view.host})` : p;

    // Must: a granted path, by the name written or by its real name, reaches its host content;
    // so does a visible-only one (stat and listing show the real file).
    if (hostReal && (declared.has(p) || hostReal === p)) {
      const want = policyRights(hostReal);
      const shown = isVisible(hostReal);
      if ((want.includes('r') || shown) && !(view.kind === 'host' && view.host === hostReal)) {
        const what = shown ? 'present, visible-only (stat shows it; the supervisor refuses every open but O_PATH and every exec)' : `readable (${describeRights(want)}`;
        findings.push({ layer: 'mounts', subject: p, expected: shown ? `${what}, host ${hostReal}` : `${what}, host ${hostReal})`, actual: describeView(view) });
        continue;
      }
    }
    if (view.kind !== 'host') continue;

    // Must not: host content reached is no more (and no less) than the policy grants.
    const want = policyRights(view.host);
    const appendRoot = appendRootOf(view.host);
    if (isVisible(view.host)) {
      if (view.writable) {
        findings.push({ layer: 'mounts', subject: name, expected: 'read-only (visible-only: nothing in the sandbox may change it)', actual: `writable through bind ${view.bind}` });
      }
    } else if (!want.includes('r')) {
      findings.push({
        layer: 'mounts',
        subject: name,
        expected: isDenied(view.host) ? 'not readable (denied)' : 'invisible (not granted)',
        actual: `${view.writable ? 'readable and writable' : 'readable'} through bind ${view.bind}`,
      });
    } else if (appendRoot !== undefined) {
      // Writable for the supervisor's O_APPEND opens, and on its own bind: a mount point cannot
      // be unlinked, renamed or replaced (EBUSY) nor hard-linked elsewhere (EXDEV), by anyone.
      if (!view.writable || view.bind !== appendRoot) {
        findings.push({
          layer: 'mounts',
          subject: name,
          expected: `writable on its own bind ${appendRoot} (append-only: written by the supervisor with O_APPEND, Landlock read-only for the sandbox)`,
          actual: `${view.writable ? 'writable' : 'read-only'} through bind ${view.bind}`,
        });
      }
    } else if (view.writable !== want.includes('w')) {
      findings.push({
        layer: 'mounts',
        subject: name,
        expected: want.includes('w') ? 'writable' : 'read-only',
        actual: `${view.writable ? 'writable' : 'read-only'} through bind ${view.bind}`,
      });
    }
    if (landlockOn) {
      const got = landlockRights(landlock, view.path);
      const exp = landlockExpected(view.host);
      if (got !== exp) {
        findings.push({ layer: 'landlock', subject: name, expected: `rights "${exp}" (${describeRights(exp)})`, actual: `rights "${got}" (${describeRights(got)})` });
      }
    }
  }

  if (landlockOn) {
    // Visible-only: no Landlock rule of its own, nor below it (one would give the sandbox the
    // file's bytes at the kernel layer, leaving only the supervisor between them).
    for (const v of visibleRoots) {
      for (const r of landlock) {
        if (!isWithin(r.path, v) || !/[rwx]/.test(r.rights)) continue;
        findings.push({ layer: 'landlock', subject: r.path, expected: `no Landlock rule (visible-only ${v}: no right of its own)`, actual: `a rule with rights "${r.rights}" (${describeRights(rightsSet([r.rights]))})` });
      }
    }
    const reals = [...new Set(grants.map((g) => g.real))];
    for (const real of reals) {
      const inside = privateDirs.find((d) => d !== real && isWithin(real, d));
      if (inside && !grantRights(real).includes('w') && appendRootOf(real) === undefined) {
        notes.push(`${real} is read-only at the mount layer only: it lies inside the private ${inside}, whose Landlock rule grants rw`);
      }
    }
  }
  findings.push(...supervisedFilesFindings(plan, [...appendReals].filter((a) => appendRootOf(a) === a), [...visibleRoots].filter((v) => realOrNull(v) === v)));
  return { findings, paths: samples.size, notes };
}

/**
 * The supervisor's half of append-only and visible-only: the plan must run supervised, name
 * each path in rules.append / rules.visible (the supervisor knows them from there only), and
 * hand the supervisor every call listed above (APPEND_* and VISIBLE_NEEDS).
 */
function supervisedFilesFindings(plan: Plan, append: readonly string[], visible: readonly string[]): Finding[] {
  if (append.length === 0 && visible.length === 0) return [];
  const r = plan.rules;
  if (r === null) {
    return [{ layer: 'supervisor', subject: [...append, ...visible].join(', '), expected: 'a supervised run (append-only and visible-only paths are enforced by the supervisor)', actual: 'the plan has no rules: nothing is supervised' }];
  }
  const out: Finding[] = [];
  const sup = new Set<string>(r.syscalls);
  const need = (subject: string, calls: readonly string[], why: string, condition?: string) => {
    for (const s of calls) {
      if (sup.has(s)) continue;
      out.push({
        layer: 'supervisor',
        subject: `${subject}: ${s}`,
        expected: `${s} supervised (${why})`,
        actual: `not in the plan's supervised syscalls${condition ? ` nor notified under ${condition}` : ''}`,
      });
    }
  };
  for (const a of append) {
    if (!(r.append ?? []).includes(a)) {
      out.push({ layer: 'supervisor', subject: `append-only ${a}`, expected: 'listed in plan.rules.append', actual: 'not listed: the supervisor would not keep its writes to appends (the bind is writable)' });
    }
    if (!(r.conditions?.writeOpens === true)) need(`append-only ${a}`, ['open', 'openat'], 'a write open must be performed by the supervisor, with O_APPEND', 'conditions.writeOpens');
    if (!(r.conditions?.setfl === true)) need(`append-only ${a}`, ['fcntl'], 'F_SETFL can clear O_APPEND', 'conditions.setfl');
    need(`append-only ${a}`, APPEND_OPENS, 'a write open must be performed by the supervisor, with O_APPEND');
    need(`append-only ${a}`, APPEND_FD, 'it can shorten or rewrite the file through an fd');
    need(`append-only ${a}`, APPEND_PATH, 'the bind is writable and Landlock does not cover it: it changes the file other than by appending');
  }
  const allAppend = new Set(plan.policy.effective.filesystem.append.flatMap((e) => [e.path, realOrNull(e.path)]));
  for (const a of r.append ?? []) {
    if (!allAppend.has(a)) out.push({ layer: 'supervisor', subject: `plan.rules.append ${a}`, expected: 'only the policy\'s append entries', actual: 'a path the policy does not make append-only' });
  }
  for (const v of visible) {
    if (!(r.visible ?? []).includes(v)) {
      out.push({ layer: 'supervisor', subject: `visible-only ${v}`, expected: 'listed in plan.rules.visible', actual: 'not listed: the supervisor would let it be opened and run' });
    }
    need(`visible-only ${v}`, VISIBLE_NEEDS, 'a grant above it may give Landlock rights, so every open and exec must be decided by the supervisor');
    need(`visible-only ${v}`, VISIBLE_RENAMES, 'renaming a directory above it moves it to a path no entry names');
    need(`visible-only ${v}`, VISIBLE_CHMODS, "an execute bit added by another name lets a script's #! line run it, an exec the supervisor never sees");
  }
  return out;
}

/** Resolves `p` inside the sandbox described by `ops` (see the file comment for the model). */
export function resolveInSandbox(ops: readonly MountOp[], p: string): SandboxView {
  let rest = p.split('/').filter(Boolean);
  let cur = '/';
  let links = 0;
  const hasMountBelow = (dir: string) => ops.some((o) => o.dest !== dir && isWithin(o.dest, dir));
  const follow = (target: string): boolean => {
    if (++links > MAX_LINKS) return false;
    rest = [...path.posix.resolve(cur, target).split('/').filter(Boolean), ...rest];
    cur = '/';
    return true;
  };
  let view: SandboxView = decider(ops, '/') ? viewOfRoot(ops) : { kind: 'absent', path: '/', why: 'the empty root' };
  while (rest.length > 0) {
    const next = path.posix.join(cur, rest.shift()!);
    const last = rest.length === 0;
    const op = decider(ops, next);
    if (!op) {
      if (hasMountBelow(next)) {
        cur = next;
        view = { kind: 'absent', path: next, why: 'an empty directory bwrap made for a mount point below it' };
        continue;
      }
      return { kind: 'absent', path: next, why: 'not mounted (the root is an empty tmpfs)' };
    }
    switch (op.kind) {
      case 'proc':
      case 'dev':
        return { kind: 'special', path: next };
      case 'symlink':
        if (op.dest !== next || !follow(op.target)) return { kind: 'absent', path: next, why: 'too many symlinks' };
        continue;
      case 'tmpfs':
        if (next !== op.dest && !hasMountBelow(next)) return { kind: 'private', path: next };
        cur = next;
        view = { kind: 'private', path: next };
        continue;
      case 'mask-dir':
      case 'mask-file':
        if (next === op.dest && last) return { kind: 'masked', path: next };
        return { kind: 'absent', path: next, why: `below the mask on ${op.dest}` };
      case 'bind': {
        const host = op.src + next.slice(op.dest === '/' ? 0 : op.dest.length);
        const st = lstatOrNull(host);
        if (!st) return { kind: 'absent', path: next, why: `${host} does not exist on the host` };
        if (st.isSymbolicLink()) {
          if (!follow(readlinkSync(host))) return { kind: 'absent', path: next, why: 'too many symlinks' };
          continue;
        }
        if (!last && !st.isDirectory()) return { kind: 'absent', path: next, why: `${host} is not a directory` };
        cur = next;
        view = { kind: 'host', path: next, host, writable: op.writable, bind: op.dest };
        continue;
      }
    }
  }
  return view;
}

function viewOfRoot(ops: readonly MountOp[]): SandboxView {
  const op = decider(ops, '/')!;
  if (op.kind === 'bind') return { kind: 'host', path: '/', host: op.src, writable: op.writable, bind: '/' };
  if (op.kind === 'tmpfs') return { kind: 'private', path: '/' };
  return { kind: 'masked', path: '/' };
}

/** The mount that decides `p`: the last op on it or an ancestor. */
function decider(ops: readonly MountOp[], p: string): MountOp | undefined {
  for (let i = ops.length - 1; i >= 0; i--) if (isWithin(p, ops[i]!.dest)) return ops[i];
  return undefined;
}

/** Landlock rights at `p`: the union of every rule at or above it, as "rwx" letters (d ignored). */
export function landlockRights(rules: readonly LandlockRule[], p: string): string {
  return rightsSet(rules.filter((r) => isWithin(p, r.path)).map((r) => r.rights));
}

function rightsSet(parts: readonly string[]): string {
  const all = parts.join('');
  return [...'rwx'].filter((c) => all.includes(c)).join('');
}

function describeRights(r: string): string {
  if (r === '') return 'no access';
  return [r.includes('r') && 'read', r.includes('w') && 'write', r.includes('x') && 'execute'].filter(Boolean).join('+');
}

function describeView(v: SandboxView): string {
  switch (v.kind) {
    case 'host':
      return `${v.writable ? 'writable' : 'read-only'} host ${v.host} (bind ${v.bind})`;
    case 'private':
      return `a private tmpfs at ${v.path}, not the host's`;
    case 'masked':
      return 'masked (empty, unreadable)';
    case 'special':
      return 'the sandbox\'s own /proc or /dev';
    case 'absent':
      return `invisible: ${v.why}`;
  }
}

function realOrNull(p: string): string | null {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/** Up to `n` entries of a directory, sorted, without `except`. */
function listSome(dir: string, n: number, except?: string): string[] {
  try {
    return readdirSync(dir).filter((e) => e !== except).sort().slice(0, n);
  } catch {
    return [];
  }
}
