/**
 * Unprivileged user namespaces: the one kernel feature every Ward sandbox is
 * built on. The sysctls say what the kernel intends; the only answer that
 * counts is bwrap actually making a user namespace as this user, so the check
 * does exactly that, and on failure asks preflight's diagnosis (the same one
 * `ward run` prints) for the reason and the fix.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { SYSTEM_PATH } from '../../hostbin.js';
import { diagnoseBwrapFailure, USERNS_PROBE_ARGS } from '../../sandbox/preflight.js';
import type { Check } from '../types.js';

function sysctl(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function usernsSysctls(): string {
  const rows: [string, string][] = [
    ['user.max_user_namespaces', '/proc/sys/user/max_user_namespaces'],
    ['kernel.unprivileged_userns_clone', '/proc/sys/kernel/unprivileged_userns_clone'],
    ['kernel.apparmor_restrict_unprivileged_userns', '/proc/sys/kernel/apparmor_restrict_unprivileged_userns'],
  ];
  return rows.map(([name, file]) => `${name}=${sysctl(file) ?? '(absent)'}`).join(', ');
}

export const usernsCheck: Check = {
  id: 'host.userns',
  title: 'this user can create user namespaces (bwrap --unshare-user)',
  severity: 'critical',
  run(ctx) {
    const sysctls = usernsSysctls();
    if (!ctx.bwrap) return { status: 'fail', evidence: `cannot try without bwrap (see host.bwrap); ${sysctls}`, fix: 'install bubblewrap, then run `ward doctor` again', degrades: 'every sandbox' };
    const probe = spawnSync(ctx.bwrap, USERNS_PROBE_ARGS, { encoding: 'utf8', timeout: 10_000, env: { PATH: SYSTEM_PATH } });
    if (probe.status !== 0) {
      const said = `${probe.stderr ?? ''}`.trim() || (probe.error ? probe.error.message : `exit ${probe.status}`);
      const diagnosis = diagnoseBwrapFailure(ctx.bwrap, probe.status, said);
      return {
        status: 'fail',
        evidence: `\`bwrap --unshare-user --unshare-net --unshare-pid ... true\` as uid ${ctx.uid} failed: ${said}; ${sysctls}; ${diagnosis.message}`,
        fix: diagnosis.fix ?? 'run the command above by hand to see bwrap\'s message',
        degrades: 'every sandbox: without user namespaces bwrap cannot build one, and Ward refuses to run',
      };
    }
    const restricted = sysctl('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1';
    if (ctx.uid === 0 && restricted) {
      return {
        status: 'warn',
        severity: 'medium',
        evidence: `works as root, but AppArmor restricts unprivileged user namespaces (${sysctls}): an unprivileged user's bwrap is refused unless an AppArmor profile allows it`,
        fix: 'to run Ward as an unprivileged user (recommended), allow bwrap: /etc/apparmor.d/bwrap with `abi <abi/4.0>, include <tunables/global> profile bwrap /usr/bin/bwrap flags=(unconfined) { userns, }`, then `sudo systemctl reload apparmor`',
      };
    }
    return {
      status: 'pass',
      evidence: `bwrap made user, net and pid namespaces as uid ${ctx.uid}${restricted ? ' (AppArmor restricts user namespaces, and a profile lets bwrap through)' : ''}; ${sysctls}`,
    };
  },
};
