import { WardError } from '../../errors.js';
import { compile, preparePolicy } from '../../api.js';
import { showMatch, type Rule } from '../../rules/index.js';
import { takeValue } from '../main.js';

/**
 * `ward policy check FILE [--workspace DIR]`: validates and compiles, runs nothing.
 *
 * A policy with dynamic rules (`rules:`) lists them, and the syscalls supervised mode will
 * intercept to enforce them (src/plan/rules.ts); the plan hash covers both.
 */
export function policyCheck(args: string[]): number {
  const { file, workspace } = parse(args);
  const loaded = preparePolicy({ file }, { workspace });
  const rules = loaded.effective.rules ?? [];
  const plan = compile(loaded, { workspace });
  const out = [`ok: ${file}`, `  policy sha256 ${loaded.sha256}`, `  plan sha256   ${plan.sha256}`];
  for (const n of plan.notes) out.push(`  note: ${n}`);
  if (rules.length > 0) {
    const sys = plan.rules?.syscalls ?? [];
    const when = plan.rules?.conditions?.writeOpens && !sys.includes('open') ? '; open, openat when they could write' : '';
    out.push(`  rules (${rules.length}; enforced in supervised mode, intercepting ${sys.length > 0 ? sys.join(', ') : 'no syscall (the egress broker decides)'}${when}):`);
    const line = (r: Rule) => `after ${r.after.map(showMatch).join(' and ')} -> revoke ${r.revoke.map(showMatch).join(', ')}`;
    // What the supervisor matches: the patterns resolved through symlinks (real paths).
    for (const [i, r] of rules.entries()) {
      const planned = plan.rules?.rules[i];
      const resolved = planned && line(planned) !== line(r) ? `\n      resolved: ${line(planned)}` : '';
      out.push(`    ${line(r)}${resolved}`);
    }
  }
  for (const [i, inv] of (loaded.effective.invariants ?? []).entries()) out.push(`  invariant:${i + 1} ${inv.text} (\`ward verify\` proves it)`);
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

function parse(args: string[]): { file: string; workspace: string | undefined } {
  let file: string | undefined;
  let workspace: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--workspace' || a === '-w') workspace = takeValue(args, i++, a, 'a directory');
    else if (a.startsWith('-')) throw new WardError(`unknown option ${a} for ward policy check`, { fix: 'ward policy check FILE [--workspace DIR]' });
    else if (file === undefined) file = a;
    else throw new WardError(`unexpected argument "${a}"`, { fix: 'ward policy check FILE [--workspace DIR]' });
  }
  if (file === undefined) throw new WardError('no policy file given', { fix: 'ward policy check FILE' });
  return { file, workspace };
}
