import { WardError } from '../../errors.js';
import type { PolicyInput } from '../../api.js';
import { renderDoctor, runDoctor } from '../../doctor/index.js';
import { policyFromFlag, takeValue } from '../main.js';

const USAGE = 'ward doctor [--json] [--policy FILE | --profile NAME] [--workspace DIR]';

/**
 * `ward doctor [--json] [--policy FILE | --profile NAME] [--workspace DIR]`
 *
 * Exit 0 when no critical or high check failed, 1 otherwise, 125 on a usage
 * error (or a policy that cannot be loaded).
 */
export async function doctor(args: string[]): Promise<number> {
  let json = false;
  let policy: PolicyInput;
  let workspace: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    switch (a) {
      case '--json':
        json = true;
        break;
      case '--policy':
      case '-p':
      case '--profile':
        policy = policyFromFlag(args, i++, policy, USAGE);
        break;
      case '--workspace':
      case '-w':
        workspace = takeValue(args, i++, a, 'a directory');
        break;
      case '--help':
      case '-h':
        process.stdout.write(`usage: ${USAGE}\n`);
        return 0;
      default:
        throw new WardError(a.startsWith('-') ? `unknown option ${a} for ward doctor` : `unexpected argument "${a}"`, { fix: USAGE });
    }
  }
  const report = await runDoctor({ policy, workspace });
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderDoctor(report));
  return report.exit_code;
}
