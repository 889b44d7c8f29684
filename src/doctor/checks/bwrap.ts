/**
 * bubblewrap: present, new enough for every option Ward passes, and not setuid.
 *
 * Ward builds every sandbox with bwrap through unprivileged user namespaces. A
 * setuid-root bwrap still works, but it is a root-owned program every local user
 * can run: its bugs are privilege escalations on the host, and it runs with a
 * different (privileged) code path than the one Ward is tested with.
 */
import { spawnSync } from 'node:child_process';
import { WardError } from '../../errors.js';
import { bwrapArgs } from '../../sandbox/bwrap.js';
import { planMounts } from '../../plan/mounts.js';
import { writableInSandbox } from '../../plan/visible.js';
import type { LoadedPolicy } from '../../policy/load.js';
import { BWRAP_INSTALL_FIX, findBwrap } from '../../sandbox/preflight.js';
import { octal, statOrNull } from '../files.js';
import type { Check } from '../types.js';

/** Where bwrap is, or why it is missing or refused (never throws: the bwrap check reports it). */
export function locateBwrap(env: NodeJS.ProcessEnv, writable?: (p: string) => boolean): { path: string | null; refusal: WardError | null } {
  try {
    return { path: findBwrap(env, writable), refusal: null };
  } catch (e) {
    if (e instanceof WardError) return { path: null, refusal: e };
    throw e;
  }
}

/**
 * What the policy under check lets a sandbox write, as a run's refusal sees it: its mount plan,
 * made without Ward's own files (making those is the policy checks' business, not a lookup's).
 * Undefined when the plan cannot be made (policy.* checks say why).
 */
export function policyWritable(policy: LoadedPolicy, home: string): ((p: string) => boolean) | undefined {
  try {
    // Sockets are masks, not writable places: no socket area is walked for this lookup.
    const ops = planMounts(policy.effective, { home, origins: policy.origins, guarded: [], socketAreas: [] }).ops;
    return (p) => writableInSandbox(ops, p);
  } catch {
    return undefined;
  }
}

/**
 * Every option Ward hands bwrap, taken from the argument builder itself (with one
 * mount operation of each kind) so this list cannot drift from what launches use.
 */
export function optionsWardUses(): string[] {
  const args = bwrapArgs({
    ops: [
      { kind: 'proc', dest: '/proc' },
      { kind: 'dev', dest: '/dev' },
      { kind: 'tmpfs', dest: '/tmp', why: '' },
      { kind: 'bind', src: '/usr', dest: '/usr', writable: false },
      { kind: 'bind', src: '/w', dest: '/w', writable: true },
      { kind: 'mask-dir', dest: '/w/d' },
      { kind: 'mask-file', dest: '/w/f' },
      { kind: 'symlink', target: 'usr/lib', dest: '/lib' },
    ],
    cwd: '/',
    launcherPath: '/l',
    maskFile: '/m',
    seccompFd: 3,
  });
  return [...new Set(['--args', ...args.filter((a) => a.startsWith('--'))])];
}

export const bwrapCheck: Check = {
  id: 'host.bwrap',
  title: 'bubblewrap is installed and supports every option Ward uses',
  severity: 'critical',
  run(ctx) {
    if (!ctx.bwrap) {
      return {
        status: 'fail',
        evidence: ctx.bwrapRefusal?.message ?? 'no bwrap found',
        fix: ctx.bwrapRefusal?.fix ?? BWRAP_INSTALL_FIX,
        degrades: 'every sandbox: Ward refuses to run any command without a bwrap it can trust',
      };
    }
    const v = spawnSync(ctx.bwrap, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    const version = `${v.stdout ?? ''}`.trim() || `(--version failed: ${`${v.stderr ?? ''}`.trim() || `exit ${v.status}`})`;
    const help = spawnSync(ctx.bwrap, ['--help'], { encoding: 'utf8', timeout: 10_000 });
    const text = `${help.stdout ?? ''}${help.stderr ?? ''}`;
    const missing = optionsWardUses().filter((o) => !new RegExp(`(^|\\s)${o}(\\s|$)`, 'm').test(text));
    if (missing.length) {
      return {
        status: 'fail',
        evidence: `${ctx.bwrap}: ${version}; its --help lacks ${missing.join(', ')}`,
        fix: `install a newer bubblewrap (Ward is tested with 0.8.0); ${BWRAP_INSTALL_FIX}`,
        degrades: 'every sandbox: bwrap would reject the options Ward passes',
      };
    }
    return { status: 'pass', evidence: `${ctx.bwrap}: ${version}; supports all ${optionsWardUses().length} options Ward uses` };
  },
};

export const bwrapSetuidCheck: Check = {
  id: 'host.bwrap-setuid',
  title: 'bubblewrap is not setuid root',
  severity: 'medium',
  run(ctx) {
    if (!ctx.bwrap) return { status: 'info', evidence: 'no bwrap to look at (see host.bwrap)' };
    const st = statOrNull(ctx.bwrap);
    if (!st) return { status: 'warn', evidence: `cannot stat ${ctx.bwrap}`, fix: 'check the path in WARD_BWRAP' };
    const mode = `mode ${octal(st.mode)}, owner uid ${st.uid}`;
    if ((st.mode & 0o4000) !== 0 && st.uid === 0) {
      return {
        status: 'fail',
        evidence: `${ctx.bwrap} is setuid root (${mode}): every local user can run a root-owned sandbox builder`,
        fix: `where unprivileged user namespaces are allowed (see host.userns), drop the bit: \`sudo chmod u-s ${ctx.bwrap}\`; Ward needs no setuid bwrap`,
      };
    }
    return { status: 'pass', evidence: `${ctx.bwrap}: ${mode}, not setuid` };
  },
};
