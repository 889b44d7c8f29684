/**
 * Translation validation of a compiled Plan: the artefacts that will actually run (the seccomp
 * program's bytes, the mount ops, the Landlock rules) are interpreted here and compared with
 * the effective policy they were compiled from. `ok` is true only when nothing disagrees; each
 * disagreement is a concrete counterexample (a syscall with its arguments, or a path).
 *
 * This checks the compiler, not the policy: whether the policy itself is sensible (no secret
 * readable, W^X, refinement) is a separate question, answered over the policy alone.
 */
import type { Plan } from '../plan/compile.js';
import { builtinRules } from '../seccomp/compile.js';
import type { Finding } from './finding.js';
import { runMountValidation, type MountValidationOptions } from './mounts.js';
import { validateNotifyFilter } from './notify.js';
import { validateRuleCoverage } from './rules.js';
import { runSeccompValidation } from './seccomp.js';
import { compileNotifyFilter } from '../supervisor/filter.js';

export type { Finding } from './finding.js';
export { validateSeccomp, argValues, type SeccompExpectation } from './seccomp.js';
export { validateNotifyFilter } from './notify.js';
export { validateRuleCoverage } from './rules.js';
export { validateMounts, resolveInSandbox, landlockRights, type SandboxView, type MountValidationOptions } from './mounts.js';

export interface PlanValidation {
  ok: boolean;
  findings: Finding[];
  checked: { syscalls: number; argCases: number; paths: number; rules: number };
  /** Facts that are not failures but that a reviewer should see (e.g. Landlock off). */
  notes: string[];
}

export function validatePlan(plan: Plan, options: MountValidationOptions = {}): PlanValidation {
  const eff = plan.policy.effective;
  const seccomp = runSeccompValidation(plan.seccomp.program, {
    rules: builtinRules(eff.resources.file_size !== null, plan.rules !== null),
    allowIa32: eff.syscalls.allow_ia32,
    extraDeny: eff.syscalls.deny,
  });
  const mounts = runMountValidation(plan, options);
  // Supervised mode's notify filter, compiled from the plan exactly as launch() compiles it.
  // With its argument conditions (plan.rules.conditions), as installed: the program validated is
  // the one that runs, not a simpler sibling.
  const supervised = plan.rules?.syscalls ?? [];
  const conditions = plan.rules?.conditions ?? {};
  const notify = supervised.length > 0 ? validateNotifyFilter(compileNotifyFilter(supervised, conditions).program, supervised, conditions) : { findings: [], syscalls: 0 };
  // ... and that list against the policy's rules (./rules.ts): the filter above is only as
  // good as the list it was compiled from.
  const coverage = validateRuleCoverage(plan);
  const findings = [...seccomp.findings, ...notify.findings, ...coverage.findings, ...mounts.findings];
  return {
    ok: findings.length === 0,
    findings,
    checked: { syscalls: seccomp.syscalls + notify.syscalls, argCases: seccomp.argCases, paths: mounts.paths, rules: coverage.checked },
    notes: mounts.notes,
  };
}
