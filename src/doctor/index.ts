/**
 * `ward doctor`: checks the host the way an auditor would, before anything
 * runs. Each check looks at the machine as it is (it tries what a run would do:
 * bwrap makes a user namespace, a cgroup is created and removed, the launcher
 * asks the kernel for the Landlock ABI), and returns evidence, a fix, and which
 * layer would be missing.
 *
 *   const r = await runDoctor();           // the default policy, cwd as workspace
 *   r.score; r.degrades; r.checks.filter((c) => c.status === 'fail');
 */
import os from 'node:os';
import { preparePolicy, type PolicyInput } from '../api.js';
import { homeDir } from '../paths.js';
import { WARD_VERSION } from '../version.js';
import { locateBwrap, policyWritable } from './checks/bwrap.js';
import { CHECKS } from './checks/index.js';
import { isBlocking, score } from './score.js';
import type { Check, CheckResult, DoctorContext, DoctorReport } from './types.js';

export type { Check, CheckResult, CheckStatus, DoctorContext, DoctorReport, Outcome, Severity } from './types.js';
export { CHECKS } from './checks/index.js';
export { PENALTY, penalty, score, isBlocking } from './score.js';
export { renderDoctor } from './render.js';

export interface DoctorOptions {
  /** The policy whose grants are checked (default: the default policy). */
  policy?: PolicyInput;
  /** The workspace the policy is expanded for (default: the current directory). */
  workspace?: string;
  /** The environment to look at (default: process.env): HOME, XDG_*, WARD_BWRAP, secret-looking names. */
  env?: NodeJS.ProcessEnv;
  /** Run only these checks (default: all of CHECKS). */
  checks?: readonly Check[];
}

export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
  const env = opts.env ?? process.env;
  const policy = preparePolicy(opts.policy, { workspace: opts.workspace, env });
  const uid = process.getuid?.() ?? -1;
  const home = homeDir(env);
  // Refused here, before any check runs it: a bwrap the policy's sandbox could change.
  const found = locateBwrap(env, policyWritable(policy, home));
  const ctx: DoctorContext = { env, uid, home, policy, bwrap: found.path, bwrapRefusal: found.refusal };

  const checks: CheckResult[] = [];
  for (const check of opts.checks ?? CHECKS) {
    let outcome;
    try {
      outcome = await check.run(ctx);
    } catch (e) {
      outcome = { status: 'warn' as const, evidence: `the check itself failed: ${(e as Error).message}`, fix: 'report this as a bug in ward doctor' };
    }
    const result: CheckResult = { id: check.id, title: check.title, severity: outcome.severity ?? check.severity, status: outcome.status, evidence: outcome.evidence };
    if (outcome.fix !== undefined) result.fix = outcome.fix;
    if (outcome.degrades !== undefined && (outcome.status === 'fail' || outcome.status === 'warn')) result.degrades = outcome.degrades;
    checks.push(result);
  }

  const summary = { pass: 0, fail: 0, warn: 0, info: 0 };
  for (const c of checks) summary[c.status]++;
  let user = String(uid);
  try {
    user = os.userInfo().username;
  } catch {
    /* no passwd entry: the uid is all there is */
  }
  return {
    ward_version: WARD_VERSION,
    generated: new Date().toISOString(),
    host: { kernel: os.release(), arch: os.machine(), uid, user },
    policy: { sha256: policy.sha256, sources: policy.sources },
    checks,
    score: score(checks),
    degrades: [...new Set(checks.flatMap((c) => (c.degrades ? [`${c.id}: ${c.degrades}`] : [])))],
    summary,
    exit_code: checks.some(isBlocking) ? 1 : 0,
  };
}
