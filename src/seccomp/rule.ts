/**
 * The shape of a seccomp rule: plain data, one per (syscall, condition), with the reason.
 * The families under ./rules/ are lists of these; compile.ts turns them into BPF.
 */
import { ENOSYS, EPERM } from './abi.js';

/** What happens to a matching call: fail with an errno, or kill the whole process. */
export type RuleAction = { readonly errno: number } | 'kill';

export const DENY_EPERM: RuleAction = Object.freeze({ errno: EPERM });
/** "This kernel has no such syscall": libc falls back to an older call the filter can inspect. */
export const DENY_ENOSYS: RuleAction = Object.freeze({ errno: ENOSYS });

export type ArgIndex = 0 | 1 | 2 | 3 | 4 | 5;

/**
 * A test on one argument. Arguments are 64-bit registers, but many syscalls take an `int` or
 * `unsigned int` and the kernel ignores the high half; a test on such an argument must then look
 * at the low 32 bits only, or a caller could set a high bit to slip past an equality check.
 */
export type ArgTest =
  /** Any bit of `mask` is set, over all 64 bits (each half of the mask that is non-zero is checked). */
  | { readonly arg: ArgIndex; readonly anyBits: bigint }
  /** The low 32 bits equal one of `values`. */
  | { readonly arg: ArgIndex; readonly in32: readonly number[] }
  /** The low 32 bits equal none of `values`. */
  | { readonly arg: ArgIndex; readonly notIn32: readonly number[] }
  /** The low 32 bits have none of the bits of `noneOf32` set (a required flag is missing). */
  | { readonly arg: ArgIndex; readonly noneOf32: number }
  /** The low 32 bits, masked with `masked32`, equal `equals32` (one flag set, another not). */
  | { readonly arg: ArgIndex; readonly masked32: number; readonly equals32: number };

export interface SeccompRule {
  /** The syscall's name in the x86_64 or i386 table; a rule applies on each ABI that has the name. */
  readonly syscall: string;
  readonly action: RuleAction;
  /** Without `when` the rule always applies; with it, only to calls whose argument passes the test. */
  readonly when?: ArgTest;
  /** Why the call is denied: shown by `ward explain` and in review. */
  readonly why: string;
}

/** Does a call with these arguments match the rule? The reference meaning of `when`. */
export function ruleMatches(rule: SeccompRule, args: readonly bigint[]): boolean {
  const { when } = rule;
  if (when === undefined) return true;
  const value = BigInt.asUintN(64, args[when.arg] ?? 0n);
  const low = Number(value & 0xffffffffn);
  if ('anyBits' in when) return (value & when.anyBits) !== 0n;
  if ('noneOf32' in when) return (low & when.noneOf32) === 0;
  if ('masked32' in when) return ((low & when.masked32) >>> 0) === when.equals32;
  if ('in32' in when) return when.in32.includes(low);
  return !when.notIn32.includes(low);
}
