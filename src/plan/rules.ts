/**
 * Dynamic rules -> what supervised mode must intercept to enforce them. Pure data: the result
 * goes into the Plan (and its hash), so `ward policy show --plan`, `ward verify` and the launch
 * record all name exactly the syscalls and rules a run is supervised with.
 *
 * Only what a rule needs is intercepted (every intercepted call costs a round trip to Ward):
 *
 *   event / revocation                  syscalls                         who decides
 *   after read P, revoke read P         open, openat, openat2, creat     supervisor (emulated open)
 *   after write P, revoke append P      openat2, creat; open and openat  supervisor (emulated open)
 *                                       when their flags could write
 *                                       (NotifyConditions.writeOpens);
 *                                       after write P also PATH_OPS,     supervisor (performed by Ward
 *                                       the same calls revoke write P    on the resolved names; a
 *                                       refuses (below): each one that   directory renamed is a write
 *                                       would be refused is the event    of its whole tree)
 *   after exec P                        execve, execveat                 supervisor
 *   after connect D                     none                             egress broker (it knows D)
 *   revoke write P                      write opens (as above) +         supervisor (each performed by
 *                                       PATH_OPS: unlink(at),
 *                                       rmdir, rename(at, at2), link(at), Ward on the resolved names:
 *                                       symlink(at), mkdir(at),          worker.ts handlePathOp)
 *                                       mknod(at), truncate
 *   revoke exec P                       execve, execveat                 supervisor
 *   revoke network (connect *)          connect                          supervisor (blind) + broker
 *   revoke connect D (D not *)          none                             egress broker
 *
 *
 * filesystem.append (no rule needed: a policy with append-only files always runs supervised):
 *   write opens only (open/openat when the flags could write, NotifyConditions.writeOpens;
 *   openat2 and creat always), fcntl F_SETFL only (.setfl), the PATH_OPS, and ftruncate,
 *   fallocate, pwritev2, io_setup (FD_OPS). Read-only opens stay in the kernel (Landlock 'r').
 *
 *
 * filesystem.visible: every open and exec (opens, execs): the supervisor refuses any open but
 *   O_PATH, and any exec, of a visible-only file, by path and by identity. Landlock gives the
 *   file no right of its own (planMounts binds it read-only with no rule), but a grant on a
 *   directory above it would: Landlock cannot subtract, so the supervisor must see the opens.
 *   And rename, renameat, renameat2: the supervisor refuses moving a directory above an entry
 *   (the entry's bind moves with it, to a path no entry names). Append-only entries get the
 *   same refusal from the PATH_OPS they need anyway.
 *
 * A rename that moves or replaces a directory is decided as a write of its whole tree (src/rules
 * isAllowedBelow, eventsBelow): that needs no other syscall than the rename itself.
 *
 * connect is decided blind (its address is not read), so a connect *event* can only come from
 * the broker, which sees the destination's name, and a revocation of some destinations only
 * can only be enforced there. Every way out of the sandbox's network namespace goes through the
 * broker, so nothing is lost; a connection inside the sandbox's own loopback is only covered by
 * `revoke: network`.
 */
import type { Match, Rule } from '../rules/index.js';
import type { LandlockRule } from '../launcher/launcher.js';
import { isWithin } from '../policy/expand.js';
import { pathShape, resolvePathPattern } from '../rules/pattern.js';
import { realpathSync } from 'node:fs';
import type { EffectivePolicy, LoadedPolicy } from '../policy/load.js';
import { PolicyError } from '../errors.js';
import { realOr, realPrefix } from '../paths.js';
import { linkInWritable } from './mounts.js';
import { FD_OPS, PATH_OPS, type NotifyConditions, type SupervisedSyscall } from '../supervisor/filter.js';

export interface RulesPlan {
  /** The effective policy's rules, as data (the supervisor and the broker run src/rules on them). */
  rules: Rule[];
  /** The syscalls the notify filter hands to the supervisor (sorted; may be empty: broker only). */
  syscalls: SupervisedSyscall[];
  /** Calls notified only under argument conditions (filter.ts); absent when there are none. */
  conditions?: NotifyConditions;
  /** filesystem.append, real paths: enforced by the supervisor; absent when there are none. */
  append?: string[];
  /** filesystem.visible, real paths: every open and exec of them refused by the supervisor; absent when none. */
  visible?: string[];
}

/** The files whose mode only the supervisor can enforce (append-only, visible-only), as real paths. */
export interface SupervisedFiles {
  append?: readonly string[];
  visible?: readonly string[];
}

const OPENS: SupervisedSyscall[] = ['open', 'openat', 'openat2', 'creat'];
const EXECS: SupervisedSyscall[] = ['execve', 'execveat'];
/** Writes by path that are not opens, performed by the supervisor on resolved names (filter.ts PATH_OPS). */
const PATH_WRITES: SupervisedSyscall[] = [...PATH_OPS];
const RENAMES: SupervisedSyscall[] = ['rename', 'renameat', 'renameat2'];
/** Mode changes: an execute bit added to a visible-only file (by a second name) would let the kernel run it as an interpreter. */
const CHMODS: SupervisedSyscall[] = ['chmod', 'fchmodat', 'fchmodat2', 'fchmod'];

/**
 * The append-only paths of a policy, as real paths (the binds keep real paths, and the
 * supervisor compares the kernel's own path of what it opened). Missing optional entries are
 * left out, as planMounts leaves them out.
 */
export function supervisedFiles(eff: EffectivePolicy): SupervisedFiles {
  return { append: realPaths(eff.filesystem.append), visible: realPaths(eff.filesystem.visible) };
}

function realPaths(entries: readonly { path: string }[]): string[] {
  const out: string[] = [];
  for (const e of entries) {
    try {
      out.push(realpathSync(e.path));
    } catch {
      /* missing: planMounts refuses it, or skips it when optional */
    }
  }
  return [...new Set(out)].sort();
}

/**
 * The rules as the supervisor must match them: every path pattern resolved through the
 * symlinks on its existing prefix (pattern.ts resolvePathPattern, paths.ts realPrefix). The
 * supervisor decides on the kernel's real path of what was opened, so `revoke: read /bin/**`
 * on a host where /bin -> usr/bin would otherwise match nothing while Ward reports it revoked.
 * Destination patterns are kept. `real` is for tests.
 */
export function resolveRules(rules: readonly Rule[], real: (p: string) => string = realPrefix): Rule[] {
  const one = (m: Match): Match => (m.access === 'connect' ? { ...m } : { access: m.access, target: resolvePathPattern(m.target, real) });
  return rules.map((r) => ({ after: r.after.map(one), revoke: r.revoke.map(one) }));
}

/**
 * The plan's rules for a policy (compile.ts, and launch.ts to check a plan against its
 * policy): resolved as above. A pattern whose way to its real path goes through a symlink
 * inside a writable grant of the same policy is refused, wherever the link points (mounts.ts
 * linkInWritable): a sandboxed command could have made or re-aimed that link in an earlier run,
 * to turn this run's trigger or revocation away from the files the user named.
 */
export function policyRules(policy: LoadedPolicy): RulesPlan | null {
  const eff = policy.effective;
  const rules = eff.rules ?? [];
  const writable = [...eff.filesystem.write, ...eff.filesystem.append].map((e) => ({ real: realOr(e.path), literal: e.path }));
  // Each root resolved once, for the rules and for the link check below.
  const reals = new Map<string, string>();
  const real = (p: string) => reals.get(p) ?? reals.set(p, realPrefix(p)).get(p)!;
  const resolved = resolveRules(rules, real);
  rules.forEach((rule, i) => {
    for (const role of ['after', 'revoke'] as const) {
      rule[role].forEach((m, j) => {
        if (m.access === 'connect') return;
        const s = pathShape(m.target);
        const root = s.kind === 'subtree' ? s.path : s.dir;
        // Any link there, even one that stays inside the grant: re-aimed between runs (`ln -sfn
        // decoy secrets`), it would turn the next run's rule away from the files named now.
        const found = linkInWritable(root, real(root), writable, true);
        if (!found) return;
        throw new PolicyError(
          policy.sources.at(-1) ?? '(policy)',
          `rules[${i}].${role}`,
          `"${m.access} ${m.target}" goes through the symlink ${found.link.dest} -> ${found.link.target}, which lies inside the writable grant ${found.around.literal}: a sandboxed command could have made that link, or re-aim it, to point this rule at other files (now ${resolved[i]![role][j]!.target})`,
          `if you did not make the link, remove it (\`rm ${found.link.dest}\`) and check what else changed in ${found.around.literal}; if you did, name the real path in the rule: "${m.access} ${resolved[i]![role][j]!.target}"`,
        );
      });
    }
  });
  return planRules(resolved, supervisedFiles(eff));
}

export function planRules(rules: readonly Rule[], files: SupervisedFiles = {}): RulesPlan | null {
  const append = files.append ?? [];
  const visible = files.visible ?? [];
  if (rules.length === 0 && append.length === 0 && visible.length === 0) return null;
  const need = new Set<SupervisedSyscall>();
  // fcntl only under its condition (F_SETFL): never the whole call, every program uses it.
  // (Its write opens: writeOpens below.)
  if (append.length > 0) [...PATH_WRITES, ...FD_OPS.filter((s) => s !== 'fcntl')].forEach((s) => need.add(s as SupervisedSyscall));
  // A read-only open can matter only to a rule about reads: every other rule sees the opens that
  // could write, and read-only ones stay in the kernel (a round trip each saved).
  let writeOpens = append.length > 0;
  for (const rule of rules) {
    for (const m of rule.after) {
      if (m.access === 'read') OPENS.forEach((s) => need.add(s));
      else if (m.access === 'write') {
        // Every call `revoke: write` refuses is a write event too (the rename family among them:
        // a tree renamed into or out of the pattern writes it). With opens and renames only, `ln
        // f P/x`, `mkdir P/d` or truncate(2) wrote P while the rule kept waiting.
        writeOpens = true;
        PATH_WRITES.forEach((s) => need.add(s));
      } else if (m.access === 'exec') EXECS.forEach((s) => need.add(s));
    }
    for (const m of rule.revoke) {
      if (m.access === 'read') OPENS.forEach((s) => need.add(s));
      else if (m.access === 'append') writeOpens = true;
      else if (m.access === 'write') {
        writeOpens = true;
        PATH_WRITES.forEach((s) => need.add(s));
      } else if (m.access === 'exec') EXECS.forEach((s) => need.add(s));
      else if (m.access === 'connect' && m.target === '*') need.add('connect');
    }
  }
  // openat2's flags are in memory and creat always writes: both whatever the flags.
  if (writeOpens) ['openat2', 'creat'].forEach((s) => need.add(s as SupervisedSyscall));
  // Visible-only: every open (a read-only one too) and every exec, whatever the flags; and the
  // renames, so no directory above an entry is moved (its files would then be at paths no entry
  // names, and an entry that is a directory knows only its own identity).
  // And its mode: a file of an entry must keep no execute bit (checked at launch, launch.ts), or
  // a script's #! line naming it runs it without any exec of it.
  if (visible.length > 0) [...OPENS, ...EXECS, ...RENAMES, ...CHMODS].forEach((s) => need.add(s));
  const plan: RulesPlan = { rules: rules.map((r) => ({ after: r.after.map((m) => ({ ...m })), revoke: r.revoke.map((m) => ({ ...m })) })), syscalls: [...need].sort() };
  // (Where open and openat are listed, a rule or visible-only file needs every one of them, and the filter notifies them all.)
  if (writeOpens && !(need.has('open') && need.has('openat'))) plan.conditions = { writeOpens: true };
  if (append.length > 0) {
    plan.conditions = { writeOpens: true, setfl: true };
    plan.append = [...append];
  }
  if (visible.length > 0) plan.visible = [...visible];
  return plan;
}

/**
 * bind(2) of a unix socket to a path makes a directory entry (a socket node) without any open,
 * so a `revoke: write P` cannot be enforced on it by the supervisor the way it is on mkdir or
 * mknod: Ward cannot bind for the program with the kernel's semantics (the address the socket
 * then reports is the string given to bind, resolved from the binder's root and cwd, and Ward's
 * thread cannot take the sandbox's root), and a CONTINUE decided on an address in memory could
 * be raced. Nor can it be an `after: write P` event, for the same reason: a socket node made in
 * P would be a write of P no rule saw. So the kernel refuses it from the start instead: every
 * Landlock rule a write pattern (revoked or waited for) reaches (the rule's tree holds paths the
 * pattern matches, or the pattern's tree holds the rule) loses LANDLOCK_ACCESS_FS_MAKE_SOCK (the
 * launcher's right letter 'n'). Rights add up along a path, so every such rule must lose it,
 * ancestors included. Elsewhere (a private /tmp, $HOME) binds are the kernel's own. The cost,
 * stated in the plan's notes: for the whole run, no unix socket can be bound to a path in those
 * trees.
 */
export function withoutSocketNodes(landlock: readonly LandlockRule[], plan: RulesPlan | null): { landlock: LandlockRule[]; notes: string[] } {
  const roots: { path: string; why: string }[] = [];
  for (const r of plan?.rules ?? []) {
    for (const [role, why] of [['revoke', 'revokes writes to'], ['after', 'waits for a write to']] as const) {
      for (const m of r[role]) {
        if (m.access !== 'write') continue;
        const shape = pathShape(m.target);
        roots.push({ path: shape.kind === 'subtree' ? shape.path : shape.dir, why });
      }
    }
  }
  if (roots.length === 0) return { landlock: [...landlock], notes: [] };
  const notes: string[] = [];
  const out = landlock.map((rule) => {
    if (!rule.rights.includes('w') || rule.rights.includes('n')) return rule;
    const by = roots.find((p) => isWithin(p.path, rule.path) || isWithin(rule.path, p.path));
    if (by === undefined) return rule;
    notes.push(`no unix socket can be bound to a path under ${rule.path}: a rule ${by.why} ${by.path} there, and bind(2) cannot be decided at run time (Landlock refuses it from the start)`);
    return { ...rule, rights: `${rule.rights}n` };
  });
  return { landlock: out, notes };
}
