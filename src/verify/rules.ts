/**
 * Translation validation of the plan's supervised-syscall list against the policy's `rules:`.
 * ./notify.ts checks that the notify filter hands the supervisor exactly the plan's list; this
 * checks that the list itself covers every rule: each `after` event must be observable (the
 * syscalls that perform it are supervised), and each revocation enforceable (every syscall
 * that performs the revoked access is supervised), else the rule silently never fires or
 * never bites. It also checks that the rules the supervisor will run are the policy's.
 *
 * The table below is written from the meaning of each access (which calls can read, write or
 * execute a path, or connect), not from the planner (src/plan/rules.ts), so that a planner
 * that forgets a call is caught here. Other routes to the same accesses (open_by_handle_at,
 * io_uring) are refused outright by the static filter, which ./seccomp.ts validates.
 *
 * For a write (an `after: write` event, a `revoke: write` or `revoke: append`), open and openat
 * may instead be notified under conditions.writeOpens (when their flags could write: ./notify.ts
 * validates the filter against that); a read needs every open.
 *
 * `revoke: write` covers metadata too (mkdir, mknod, rmdir, chmod, chown, utimes, xattrs, by
 * path and by fd): after it, the sandbox may not change the revoked paths in any way. The fd
 * variants matter because an fd opened read-only (still allowed after the revocation) is
 * enough for fchmod, fchown and fsetxattr. An `after: write` event is the same set of calls:
 * what a write revocation would refuse is a write that happened.
 */
import type { Plan } from '../plan/compile.js';
import { resolveRules } from '../plan/rules.js';
import type { Access, Rule } from '../rules/index.js';
import type { Finding } from './finding.js';

/** Calls that open a path (and so read or write its bytes): every flavour of open. */
const OPENING = ['open', 'openat', 'openat2', 'creat'];
/** Calls that change a path's bytes or name without opening it. */
const PATH_CHANGING = ['truncate', 'unlink', 'unlinkat', 'rename', 'renameat', 'renameat2', 'link', 'linkat', 'symlink', 'symlinkat'];
/** Calls that change a path's metadata or create or remove a directory entry that is not a file's bytes. */
const METADATA_CHANGING = [
  'mkdir', 'mkdirat', 'mknod', 'mknodat', 'rmdir',
  'chmod', 'fchmodat', 'fchmodat2', 'chown', 'lchown', 'fchownat',
  'utime', 'utimes', 'futimesat', 'utimensat',
  'setxattr', 'lsetxattr', 'setxattrat', 'removexattr', 'lremovexattr', 'removexattrat',
  // By fd: decided on the caller's open file.
  'fchmod', 'fchown', 'fsetxattr', 'fremovexattr',
];
const EXECUTING = ['execve', 'execveat'];

/**
 * The syscalls through which an event of this kind happens (what the supervisor must see for an
 * `after`). A write event is every call a write revocation refuses: a path written by a hard link,
 * a symlink, a directory or node made, a name removed or renamed (a whole tree moved in or out,
 * `mv tmp proj`, writes proj/src/main.c), truncate(2), or a mode, owner, time or xattr changed.
 * Leave one out and `never read S after write P` is proved of a run in which `ln f P/x` wrote P
 * and S was read after it.
 */
function observedBy(access: Access, target: string): string[] {
  if (access === 'read') return OPENING;
  if (access === 'write') return performedBy('write', target);
  if (access === 'exec') return EXECUTING;
  // A connect event names a destination: only the egress broker knows it (the supervisor
  // decides connect blind), so it is observed there, with no syscall supervised.
  void target;
  return [];
}

/** The syscalls that can perform the access (what must be supervised to revoke it). */
function performedBy(access: Access, target: string): string[] {
  if (access === 'read' || access === 'append') return OPENING;
  if (access === 'write') return [...OPENING, ...PATH_CHANGING, ...METADATA_CHANGING];
  if (access === 'exec') return EXECUTING;
  // Revoking every destination stops connect itself; revoking some is the broker's (it sees
  // the name), so no syscall.
  return target === '*' ? ['connect'] : [];
}

const show = (m: { access: string; target: string }) => `${m.access} ${m.target}`;
const canonical = (rules: readonly Rule[]) =>
  JSON.stringify(rules.map((r) => ({ after: r.after.map((m) => [m.access, m.target]), revoke: r.revoke.map((m) => [m.access, m.target]) })));

export interface RulesValidation {
  findings: Finding[];
  /** (rule, match) pairs checked. */
  checked: number;
}

/** Does the plan supervise what the policy's rules need? Findings name the rule and the missing syscall. */
export function validateRuleCoverage(plan: Plan): RulesValidation {
  const rules = plan.policy.effective.rules ?? [];
  const findings: Finding[] = [];
  if (rules.length === 0) {
    // Append-only and visible-only files run supervised without any rule; what they need
    // supervised is judged by ./mounts.ts (supervisedFilesFindings), not here.
    const fs = plan.policy.effective.filesystem;
    const files = fs.append.length > 0 || fs.visible.length > 0;
    if (plan.rules !== null && plan.rules.syscalls.length > 0 && !files) {
      findings.push({ layer: 'supervisor', subject: 'supervised syscalls', expected: 'none (the policy has no rules)', actual: plan.rules.syscalls.join(', ') });
    }
    if (plan.rules !== null && plan.rules.rules.length > 0) {
      findings.push({ layer: 'supervisor', subject: 'rules', expected: 'none (the policy has no rules)', actual: `the plan carries ${plan.rules.rules.length} rules for the supervisor` });
    }
    return { findings, checked: 0 };
  }
  if (plan.rules === null) {
    return { findings: [{ layer: 'supervisor', subject: 'rules', expected: `${rules.length} rules enforced by supervised mode`, actual: 'no rules in the plan: nothing supervised' }], checked: 0 };
  }
  // The supervisor matches real paths, so the plan must carry the policy's patterns resolved
  // through symlinks as they are on this host now (a pattern as written through /bin -> usr/bin
  // would match nothing).
  if (canonical(plan.rules.rules) !== canonical(resolveRules(rules))) {
    findings.push({ layer: 'supervisor', subject: 'rules', expected: "the policy's rules, their path patterns resolved through symlinks", actual: 'the plan carries different rules for the supervisor' });
  }
  const supervised = new Set<string>(plan.rules.syscalls);
  // open and openat notified only when their flags could write (./notify.ts checks the filter
  // does exactly that): enough for an access that is a write, never for a read.
  const writeOpens = plan.rules.conditions?.writeOpens === true;
  const isWrite = (a: Access) => a === 'write' || a === 'append';
  let checked = 0;
  for (const [i, rule] of rules.entries()) {
    const need = (m: { access: Access; target: string }, calls: string[], role: 'after' | 'revoke') => {
      checked++;
      for (const s of calls) {
        if (supervised.has(s)) continue;
        const byCondition = isWrite(m.access) && (s === 'open' || s === 'openat');
        if (writeOpens && byCondition) continue;
        findings.push({
          layer: 'supervisor',
          subject: `rule ${i + 1} (${role} ${show(m)}): ${s}`,
          expected: `${s} supervised (${role === 'after' ? 'the event happens through it' : 'the revoked access can be done through it'})`,
          actual: `not in the plan's supervised syscalls (${[...supervised].join(', ') || 'none'})${byCondition ? ' nor notified under conditions.writeOpens' : ''}`,
        });
      }
    };
    for (const m of rule.after) need(m, observedBy(m.access, m.target), 'after');
    for (const m of rule.revoke) need(m, performedBy(m.access, m.target), 'revoke');
  }
  return { findings, checked };
}
