import { WardError } from '../../errors.js';
import { compile, preparePolicy, type PolicyInput } from '../../api.js';
import { canonicalJson } from '../../policy/canonical.js';
import { takeValue } from '../main.js';

/**
 * `ward policy show [FILE | --profile NAME] [--workspace DIR] [--plan]`
 *
 * Line 1 is the effective policy as canonical JSON, line 2 its SHA-256, so
 * anyone can re-check the hash: `ward policy show p.yaml | head -n1 | tr -d '\n' | sha256sum`.
 */
export function policyShow(args: string[]): number {
  let input: PolicyInput;
  let workspace: string | undefined;
  let showPlan = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--workspace' || a === '-w') workspace = takeValue(args, i++, a, 'a directory');
    else if (a === '--profile') input = { profile: takeValue(args, i++, a, 'a name') };
    else if (a === '--plan') showPlan = true;
    else if (a.startsWith('-')) throw new WardError(`unknown option ${a} for ward policy show`, { fix: 'ward policy show [FILE | --profile NAME] [--workspace DIR] [--plan]' });
    else if (input === undefined) input = { file: a };
    else throw new WardError(`unexpected argument "${a}"`, { fix: 'ward policy show [FILE | --profile NAME]' });
  }
  const loaded = preparePolicy(input, { workspace });
  process.stdout.write(`${loaded.canonical}\nsha256 ${loaded.sha256}\n`);
  if (showPlan) {
    const plan = compile(loaded, { workspace });
    const view = {
      sha256: plan.sha256,
      cwd: plan.mounts.cwd,
      mounts: plan.mounts.ops,
      landlock: { ...plan.landlock, rules: plan.mounts.landlock },
      seccomp: { sha256: plan.seccomp.sha256, instructions: plan.seccomp.instructions },
      rlimits: plan.rlimits,
      cgroup: plan.cgroup,
      env: Object.keys(plan.env),
      notes: plan.notes,
      // Dynamic rules and the syscalls supervised mode intercepts for them (only when there are rules).
      ...(plan.rules ? { rules: plan.rules } : {}),
    };
    process.stdout.write(`${canonicalJson(view)}\n`);
  }
  return 0;
}
