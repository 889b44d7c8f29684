/**
 * Dynamic rules -> what supervised mode must intercept to enforce them. Pure data: the result
 * goes into the Plan (and its hash), so `ward policy show --plan`, `ward verify` and the launch
 * record all name exactly the syscalls and rules a run is supervised with.
 *
 * Only what a rule needs is intercepted (every intercepted call costs a round trip to Ward):
 *
 *   event / revocation                  syscalls                         who decides
 *   after read|write P                  open, openat, openat2, creat     supervisor (emulated open)
 *   after exec P                        execve, execveat                 supervisor
 *   after connect D                     none                             egress broker (it knows D)
 *   revoke read|append P                opens                            supervisor
 *   revoke write P                      opens + unlink(at), rename(at,   supervisor (the path writes
 *                                       at2), truncate, link(at),        blind: see rules-decider.ts)
 *                                       symlink(at)
 *   revoke exec P                       execve, execveat                 supervisor
 *   revoke network (connect *)          connect                          supervisor (blind) + broker
 *   revoke connect D (D not *)          none                             egress broker
 *
 * connect is decided blind (its address is not read), so a connect *event* can only come from
 * the broker, which sees the destination's name, and a revocation of some destinations only
 * can only be enforced there. Every way out of the sandbox's network namespace goes through the
 * broker, so nothing is lost; a connection inside the sandbox's own loopback is only covered by
 * `revoke: network`.
 */
import type { Rule } from '../rules/index.js';
import type { SupervisedSyscall } from '../supervisor/filter.js';

export interface RulesPlan {
  /** The effective policy's rules, as data (the supervisor and the broker run src/rules on them). */
  rules: Rule[];
  /** The syscalls the notify filter hands to the supervisor (sorted; may be empty: broker only). */
  syscalls: SupervisedSyscall[];
}

const OPENS: SupervisedSyscall[] = ['open', 'openat', 'openat2', 'creat'];
const EXECS: SupervisedSyscall[] = ['execve', 'execveat'];
/** Writes by path that are not opens: decided blind (filter.ts), so refused wholesale once a write is revoked. */
const PATH_WRITES: SupervisedSyscall[] = ['unlink', 'unlinkat', 'rename', 'renameat', 'renameat2', 'truncate', 'link', 'linkat', 'symlink', 'symlinkat'];

export function planRules(rules: readonly Rule[]): RulesPlan | null {
  if (rules.length === 0) return null;
  const need = new Set<SupervisedSyscall>();
  for (const rule of rules) {
    for (const m of rule.after) {
      if (m.access === 'read' || m.access === 'write') OPENS.forEach((s) => need.add(s));
      else if (m.access === 'exec') EXECS.forEach((s) => need.add(s));
    }
    for (const m of rule.revoke) {
      if (m.access === 'read' || m.access === 'append') OPENS.forEach((s) => need.add(s));
      else if (m.access === 'write') [...OPENS, ...PATH_WRITES].forEach((s) => need.add(s));
      else if (m.access === 'exec') EXECS.forEach((s) => need.add(s));
      else if (m.access === 'connect' && m.target === '*') need.add('connect');
    }
  }
  return { rules: rules.map((r) => ({ after: r.after.map((m) => ({ ...m })), revoke: r.revoke.map((m) => ({ ...m })) })), syscalls: [...need].sort() };
}
