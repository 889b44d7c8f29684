/**
 * seccomp: the filter Ward compiles is loaded by bwrap (`--seccomp FD`) and
 * refuses dangerous syscalls with errno or kills the process; it is never
 * optional. User notification (SECCOMP_RET_USER_NOTIF) is what lets a
 * supervisor outside the sandbox see and answer individual syscalls: without it
 * the kernel still says no, but Ward cannot observe or broker those calls.
 */
import { readFileSync } from 'node:fs';
import { supervisedModeProblem } from '../../supervisor/preflight.js';
import type { Check } from '../types.js';

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The kernel's seccomp return actions, or null when seccomp filtering is absent. */
export function seccompActions(): string[] | null {
  const v = read('/proc/sys/kernel/seccomp/actions_avail');
  return v === undefined ? null : v.split(/\s+/).filter(Boolean);
}

/** `Seccomp:` of this process (0 none, 2 filtered: Ward itself already runs under a filter, e.g. in a container). */
function ownSeccomp(): string {
  const m = /^Seccomp:\s*(\d+)/m.exec(read('/proc/self/status') ?? '');
  return m ? m[1]! : 'unknown';
}

const NEEDED = ['errno', 'kill_process', 'allow'];

export const seccompCheck: Check = {
  id: 'host.seccomp',
  title: 'seccomp filters are available (errno and kill_process actions)',
  severity: 'critical',
  run() {
    const actions = seccompActions();
    if (actions === null) {
      return {
        status: 'fail',
        evidence: '/proc/sys/kernel/seccomp/actions_avail is absent: the kernel has no seccomp filter support',
        fix: 'use a kernel built with CONFIG_SECCOMP_FILTER (every mainstream distribution kernel is)',
        degrades: 'every sandbox: the syscall filter is never optional, so Ward refuses to run',
      };
    }
    const missing = NEEDED.filter((a) => !actions.includes(a));
    const evidence = `actions_avail: ${actions.join(' ')}; this process: Seccomp ${ownSeccomp()}`;
    if (missing.length) {
      return { status: 'fail', evidence: `${evidence}; missing ${missing.join(', ')}`, fix: 'use a newer kernel (Linux >= 4.14 has every action Ward uses)', degrades: 'the syscall filter' };
    }
    return { status: 'pass', evidence };
  },
};

export const seccompNotifyCheck: Check = {
  id: 'host.seccomp-notify',
  title: 'seccomp user notification is available (a supervisor can observe syscalls)',
  severity: 'medium',
  run() {
    const actions = seccompActions();
    if (actions === null) return { status: 'fail', evidence: 'no seccomp at all (see host.seccomp)', degrades: 'syscall observation through seccomp user notification' };
    if (!actions.includes('user_notif')) {
      return {
        status: 'warn',
        evidence: `actions_avail: ${actions.join(' ')} (no user_notif)`,
        fix: 'use Linux >= 5.0 (user notification) or, better, >= 5.9 (descriptor injection); the static filter still holds without it',
        degrades: 'supervised mode: Ward refuses to run a policy with dynamic rules (`rules:`), and no syscall refusal is recorded one by one',
      };
    }
    // The same check `ward run` makes before a policy with rules (src/supervisor/preflight.ts).
    const p = supervisedModeProblem();
    if (p) return { status: 'warn', evidence: `user_notif listed in actions_avail, but ${p.problem}`, fix: p.fix, degrades: 'supervised mode: Ward refuses to run a policy with dynamic rules (`rules:`)' };
    return { status: 'pass', evidence: `user_notif listed in actions_avail; supervised mode can run here (a policy's dynamic rules are enforced)` };
  },
};
