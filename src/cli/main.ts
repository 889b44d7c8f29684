/**
 * `ward` command line: one file per command under commands/, this file only
 * dispatches. Exit codes: the command's own for `run`; 125 for Ward's errors;
 * 124 when the wall clock ran out; 137 when another limit killed the command.
 */
import { EXIT_WARD_ERROR, formatError, WardError } from '../errors.js';
import { WARD_VERSION } from '../version.js';
import type { PolicyInput } from '../api.js';

const USAGE = `ward ${WARD_VERSION}: run commands inside a kernel-enforced boundary

usage:
  ward run [--policy FILE | --profile NAME] [--workspace DIR] [--allow-degraded]
           [--audit-log FILE] [--record FILE] [--quiet] [--verify | --verify-strict]
           [--session NAME] [--] COMMAND [ARGS...]
  ward policy check FILE [--workspace DIR]
  ward policy show [FILE | --profile NAME] [--workspace DIR] [--plan]
  ward keys init [--force]
  ward audit verify [FILE] [--pubkey KEY] [--anchor HEAD]... [--json]
  ward audit show [FILE] [--json]
  ward probe [--policy FILE | --profile NAME] [--json] [--only GROUP|ID,...]
             [--allow-degraded] [--audit-log FILE] [--report DIR]
  ward doctor [--policy FILE | --profile NAME] [--workspace DIR] [--json]
  ward verify [FILE | --profile NAME] [--refines BASE] [--json] [--timeout-ms N]
  ward demo
  ward version

profiles: minimal, node, python, default (used when no policy is given)
exit codes: the command's own; 125 Ward refused or failed; 124 wall_time; 137 another limit
`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'run':
        return await (await import('./commands/run.js')).runCommand(rest);
      case 'policy': {
        const [sub, ...args] = rest;
        if (sub === 'check') return (await import('./commands/policy-check.js')).policyCheck(args);
        if (sub === 'show') return (await import('./commands/policy-show.js')).policyShow(args);
        throw new WardError(`unknown policy subcommand ${sub === undefined ? '(none)' : `"${sub}"`}`, { fix: 'use `ward policy check FILE` or `ward policy show FILE`' });
      }
      case 'keys': {
        const [sub, ...args] = rest;
        if (sub === 'init') return await (await import('./commands/keys-init.js')).keysInit(args);
        throw new WardError(`unknown keys subcommand ${sub === undefined ? '(none)' : `"${sub}"`}`, { fix: 'use `ward keys init`' });
      }
      case 'audit': {
        const [sub, ...args] = rest;
        if (sub === 'verify') return await (await import('./commands/audit-verify.js')).auditVerify(args);
        if (sub === 'show') return await (await import('./commands/audit-show.js')).auditShow(args);
        throw new WardError(`unknown audit subcommand ${sub === undefined ? '(none)' : `"${sub}"`}`, { fix: 'use `ward audit verify FILE` or `ward audit show FILE`' });
      }
      case 'probe':
        return await (await import('./commands/probe.js')).probe(rest);
      case 'doctor':
        return await (await import('./commands/doctor.js')).doctor(rest);
      case 'verify':
        return await (await import('./commands/verify.js')).verify(rest);
      case 'demo':
        return await (await import('./commands/demo.js')).demo(rest);
      case 'version':
      case '--version':
        process.stdout.write(`ward ${WARD_VERSION}\n`);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return cmd === undefined ? EXIT_WARD_ERROR : 0;
      default:
        throw new WardError(`unknown command "${cmd}"`, { fix: 'see `ward --help`; to run a program, use `ward run -- PROGRAM`' });
    }
  } catch (e) {
    process.stderr.write(`${formatError(e)}\n`);
    return e instanceof WardError ? e.exitCode : EXIT_WARD_ERROR;
  }
}

/** Reads an option's value, or explains what is missing. */
export function takeValue(args: string[], i: number, flag: string, what: string): string {
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new WardError(`${flag} needs ${what}`, { fix: `${flag} ${what.toUpperCase().replace(/^AN? /, '')}` });
  return v;
}

/**
 * `--policy FILE` / `-p FILE` / `--profile NAME`, shared by every command that builds a
 * sandbox. `i` is the flag's index; the caller skips the value.
 */
export function policyFromFlag(args: string[], i: number, current: PolicyInput, fix: string): PolicyInput {
  const flag = args[i]!;
  if (current) throw new WardError('give one of --policy and --profile', { fix });
  return flag === '--profile' ? { profile: takeValue(args, i, flag, 'a name') } : { file: takeValue(args, i, flag, 'a file') };
}
