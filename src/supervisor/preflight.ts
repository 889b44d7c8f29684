/**
 * Can supervised mode run on this host? Asked before a supervised launch (a policy with
 * `rules:`), so that Ward refuses up front with the cause and the fix instead of starting a
 * sandbox whose rules nothing would enforce. The launch path fails closed on its own too (a
 * launcher that gets no listener never execs), but its message names the step, not the fix.
 *
 * The host facts are passed in (defaults read the real host) so each refusal can be tested.
 */
import { readFileSync } from 'node:fs';
import { loadNative } from './native.js';

export interface SupervisedHost {
  arch: string;
  /** /proc/sys/kernel/seccomp/actions_avail, or null when unreadable. */
  seccompActions: string | null;
  /** Loads koffi and libc (native.ts); throws with the reason. */
  loadNative(): void;
}

export const realHost = (): SupervisedHost => ({
  arch: process.arch,
  seccompActions: (() => {
    try {
      return readFileSync('/proc/sys/kernel/seccomp/actions_avail', 'utf8');
    } catch {
      return null;
    }
  })(),
  loadNative: () => void loadNative(),
});

export interface Problem {
  problem: string;
  fix: string;
}

const WITHOUT = 'remove `rules:` from the policy to run it in the static sandbox (without its revocations)';

export function supervisedModeProblem(host: SupervisedHost = realHost()): Problem | null {
  if (host.arch !== 'x64') {
    return { problem: `supervised mode decodes x86_64 system calls only; this is ${host.arch}`, fix: `run on an x86_64 host, or ${WITHOUT}` };
  }
  if (host.seccompActions === null || !host.seccompActions.split(/\s+/).includes('user_notif')) {
    return {
      problem: `this kernel has no seccomp user notification (${host.seccompActions === null ? '/proc/sys/kernel/seccomp/actions_avail is unreadable' : `actions_avail: ${host.seccompActions.trim()}`})`,
      fix: `use Linux >= 5.9 built with CONFIG_SECCOMP_FILTER (5.14 or later recommended), or ${WITHOUT}`,
    };
  }
  try {
    host.loadNative();
  } catch (e) {
    return { problem: `the supervisor cannot load its native calls: ${(e as Error).message}`, fix: `install Ward's dependencies (\`npm install\` in Ward's folder: koffi) with glibc's libc.so.6 present, or ${WITHOUT}` };
  }
  return null;
}
