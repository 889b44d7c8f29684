/**
 * Landlock: the second filesystem wall. The mount namespace decides what
 * exists inside the sandbox; Landlock, applied by Ward's launcher from the same
 * plan, refuses access to anything else even if a mount were wrong. The ABI is
 * asked of the kernel by the launcher (`ward-launch landlock-abi`, the same
 * binary every run uses), so the answer is the one a run would get.
 */
import { ensureLauncher, landlockAbi } from '../../launcher/launcher.js';
import type { Check } from '../types.js';

/** What each Landlock ABI version adds, as Ward uses it. */
export const LANDLOCK_FEATURES: readonly string[] = [
  '',
  'filesystem rules (1)',
  'rename/link across directories (2)',
  'truncate (3)',
  'TCP bind/connect (4)',
  'device ioctls (5)',
  'abstract unix socket and signal scoping (6)',
  'denial audit logging (7)',
];

export const launcherCheck: Check = {
  id: 'host.launcher',
  title: 'Ward\'s launcher is built (or a C compiler can build it)',
  severity: 'critical',
  run() {
    try {
      return { status: 'pass', evidence: ensureLauncher() };
    } catch (e) {
      return {
        status: 'fail',
        evidence: (e as Error).message.split('\n')[0]!,
        fix: 'run `npm run build` where a C compiler exists, or install one: `sudo apt-get install -y gcc libc6-dev`',
        degrades: 'every sandbox: the launcher joins the cgroup and applies Landlock and rlimits; Ward runs nothing without it',
      };
    }
  },
};

export const landlockCheck: Check = {
  id: 'host.landlock',
  title: 'Landlock is available (the second filesystem wall)',
  severity: 'high',
  run(ctx) {
    const mode = ctx.policy.effective.sandbox.landlock;
    let abi: number;
    try {
      abi = landlockAbi();
    } catch (e) {
      return {
        status: 'warn',
        evidence: `could not ask the launcher for the Landlock ABI: ${(e as Error).message.split('\n')[0]}`,
        fix: 'see host.launcher',
        degrades: 'Landlock status unknown',
      };
    }
    if (abi === 0) {
      return {
        status: 'fail',
        evidence: `landlock_create_ruleset reports no Landlock (ABI 0); the policy's sandbox.landlock is "${mode}"`,
        fix: 'use Linux >= 5.13 with Landlock enabled (CONFIG_SECURITY_LANDLOCK=y and "landlock" in the lsm= boot parameter or CONFIG_LSM)',
        degrades: `Landlock, the second filesystem wall: only the mount namespace hides ungranted paths${mode === 'required' ? '; policies with sandbox.landlock "required" (the default) are refused unless degraded runs are allowed' : ''}`,
      };
    }
    const has = LANDLOCK_FEATURES.slice(1, Math.min(abi, LANDLOCK_FEATURES.length - 1) + 1).join(', ');
    const evidence = `ABI ${abi}: ${has}${mode === 'off' ? '; but the policy turns Landlock off (sandbox.landlock: off)' : ''}`;
    if (mode === 'off') {
      return {
        status: 'warn',
        severity: 'medium',
        evidence,
        fix: 'set `sandbox: { landlock: required }` in the policy (the kernel supports it)',
        degrades: 'Landlock, the second filesystem wall (turned off by the policy)',
      };
    }
    return { status: 'pass', evidence };
  },
};
