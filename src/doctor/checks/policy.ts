/**
 * What the policy grants, judged against the host's file permissions.
 *
 * - A granted path that other users can write (or can swap, through a
 *   world-writable directory above it without the sticky bit) is shared with
 *   everyone on the host: what the sandbox reads or executes there can be
 *   planted, and what it writes there can be read or changed.
 * - Ward's own state (keys, audit logs, the launcher cache) must never be inside
 *   a grant: the mandatory deny masks it where a read grant would expose it, which
 *   is one wall (the mount layer; Landlock cannot subtract a subdirectory), so the
 *   check reports it; a writable grant over it (or over $HOME) is refused by the
 *   planner, and the check says that nothing will run under the policy here.
 */
import { WardError } from '../../errors.js';
import { compilePlan } from '../../plan/compile.js';
import { isWithin } from '../../policy/expand.js';
import { wardStatePaths } from '../../policy/secrets.js';
import { FS_KEYS } from '../../policy/schema.js';
import { lstatOrNull, worldWritableReasons } from '../files.js';
import { realOr } from '../../paths.js';
import type { Check } from '../types.js';

const GRANT_KEYS = FS_KEYS.filter((k) => k !== 'deny');

export const worldWritableGrantsCheck: Check = {
  id: 'policy.world-writable',
  title: 'no path the policy grants is writable or replaceable by other users',
  severity: 'high',
  run(ctx) {
    const eff = ctx.policy.effective;
    // Path -> the lists that grant it, so a path granted twice is reported once.
    const granted = new Map<string, string[]>();
    for (const key of GRANT_KEYS) {
      for (const entry of eff.filesystem[key]) {
        if (!lstatOrNull(entry.path)) continue; // an optional path that is absent grants nothing
        granted.set(entry.path, [...(granted.get(entry.path) ?? []), key]);
      }
    }
    const flagged: string[] = [];
    const fixes: string[] = [];
    for (const [p, keys] of granted) {
      const reasons = worldWritableReasons(p);
      if (reasons.length === 0) continue;
      const where = keys.map((key) => {
        const o = ctx.policy.origins.get(`${key}\0${p}`);
        return o ? `${o.file} ${o.keyPath}` : `filesystem.${key}`;
      });
      flagged.push(`${keys.map((k) => `filesystem.${k}`).join(' + ')} ${p} (${where.join(', ')}): ${reasons.map((r) => r.why).join('; ')}`);
      fixes.push(reasons.some((r) => r.path === p) ? `grant a private directory instead of ${p} (or \`chmod o-w ${p}\`)` : `move ${p} out from under ${reasons.map((r) => r.path).join(', ')}, or \`chmod +t\` that directory`);
    }
    const checked = granted.size;
    if (flagged.length) {
      return {
        status: 'fail',
        evidence: flagged.join('\n'),
        fix: [...new Set(fixes)].join('; '),
        degrades: 'sees only the files the policy names: other users can put files into, or swap, what the sandbox is granted',
      };
    }
    return { status: 'pass', evidence: `${checked} granted path${checked === 1 ? '' : 's'} of ${ctx.policy.sources.join(' + ')} checked: none writable or replaceable by others` };
  },
};

export const stateOutsideGrantsCheck: Check = {
  id: 'policy.state-dir',
  title: 'Ward\'s own state (keys, audit logs, launcher) is inside no grant',
  severity: 'critical',
  run(ctx) {
    const eff = ctx.policy.effective;
    const states = wardStatePaths(ctx.env, ctx.home);
    let masks: string[] | null = null;
    let planError: string | null = null;
    try {
      // Compiling also creates Ward's directories (a mask needs something to cover), so they exist below.
      const plan = compilePlan(ctx.policy, { home: ctx.home, env: ctx.env });
      masks = plan.mounts.ops.filter((o) => o.kind === 'mask-dir' || o.kind === 'mask-file').map((o) => o.dest);
    } catch (e) {
      if (e instanceof WardError && /is writable and (is|contains) (your home directory|Ward's own directory)/.test(e.message)) {
        return {
          status: 'fail',
          evidence: `Ward refuses to run this policy here: ${e.message}`,
          fix: e.fix ?? 'grant write only on project directories',
          degrades: 'nothing runs under this policy from here (the refusal keeps Ward\'s state and the files that run outside the sandbox out of its reach)',
        };
      }
      planError = (e as Error).message;
    }
    const grants = GRANT_KEYS.flatMap((key) => eff.filesystem[key].filter((e) => lstatOrNull(e.path)).map((e) => ({ key, path: e.path, real: realOr(e.path) })));
    const exposed: string[] = [];
    const maskedOnly: string[] = [];
    for (const s of states) {
      const real = realOr(s);
      const covering = grants.filter((g) => isWithin(s, g.path) || isWithin(real, g.real));
      if (covering.length === 0) continue;
      const by = covering.map((g) => `filesystem.${g.key} ${g.path}`).join(', ');
      if (masks && masks.some((m) => isWithin(real, m))) maskedOnly.push(`${s} inside ${by}`);
      else exposed.push(`${s} inside ${by}${planError ? ` (the plan could not be compiled to check for a mask: ${planError})` : ', and no mask covers it'}`);
    }
    if (exposed.length) {
      return {
        status: 'fail',
        evidence: exposed.join('; '),
        fix: 'narrow the grant so it does not contain Ward\'s state directories, and report this: the mandatory deny should have masked them',
        degrades: 'the evidence: a sandboxed command could read the signing key or rewrite the audit log',
      };
    }
    if (maskedOnly.length) {
      return {
        status: 'warn',
        severity: 'low',
        evidence: `${maskedOnly.join('; ')}; masked by the mandatory deny (mount layer only: Landlock cannot subtract a subdirectory from a grant)`,
        fix: 'grant narrower paths than the one containing Ward\'s state, so two walls keep it out instead of one',
      };
    }
    return { status: 'pass', evidence: `${states.join(', ')}: inside no grant of ${ctx.policy.sources.join(' + ')}` };
  },
};
