import { WardError } from '../../errors.js';
import { compile, preparePolicy } from '../../api.js';
import { takeValue } from '../main.js';

/** `ward policy check FILE [--workspace DIR]`: validates and compiles, runs nothing. */
export function policyCheck(args: string[]): number {
  const { file, workspace } = parse(args);
  const loaded = preparePolicy({ file }, { workspace });
  const plan = compile(loaded, { workspace });
  process.stdout.write(`ok: ${file}\n  policy sha256 ${loaded.sha256}\n  plan sha256   ${plan.sha256}\n`);
  for (const n of plan.notes) process.stdout.write(`  note: ${n}\n`);
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
