/**
 * Rules -> a seccomp BPF program, for `bwrap --seccomp FD`.
 *
 * Program shape (one pass, top to bottom):
 *
 *     ld [arch]
 *     jeq AUDIT_ARCH_X86_64 ? x86_64 : (allowIa32 ? i386 check : KILL)
 *   x86_64:
 *     ld [nr]
 *     jge X32_SYSCALL_BIT ? KILL            x32 ABI: same arch token, another syscall table
 *     binary search on nr over the x86_64 numbers that have rules -> a return, or a rule body
 *   i386 (only with allowIa32):
 *     jeq AUDIT_ARCH_I386 ? : KILL
 *     ld [nr]; binary search over the i386 numbers that have rules
 *   rule bodies: load the argument word(s), test, jump to a return (or to the next rule)
 *   returns: ALLOW, KILL_PROCESS, ERRNO|e for each errno used
 *
 * Syscalls without a rule fall through to ALLOW: this is a deny list of dangerous calls on top
 * of bwrap's namespaces, not an allow list. Any architecture other than x86_64 (and i386 when
 * asked for) is killed, because its numbers mean other syscalls.
 *
 * Output is deterministic: rules are grouped by syscall number in sorted order, and within one
 * syscall they keep their list order (first match wins, an unconditional rule ends the list).
 */
import {
  AUDIT_ARCH_I386,
  AUDIT_ARCH_X86_64,
  OFFSET_ARCH,
  OFFSET_NR,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  MAX_ERRNO,
  X32_SYSCALL_BIT,
  argOffset,
} from './abi.js';
import { I386_SYSCALLS } from './arch/i386.js';
import { X86_64_SYSCALLS } from './arch/x86_64.js';
import { BPF_ALU, BPF_AND, BPF_K, assemble, encode, insn, ja, jeq, jge, jset, label, ldAbs, ret, type AsmItem, type Target } from './bpf.js';
import { DENY_EPERM, type ArgTest, type RuleAction, type SeccompRule } from './rule.js';
import { SECCOMP_RULES } from './rules/index.js';
import { FILE_SIZE_RULES } from './rules/file-size.js';
import { THREAD_FILES_RULES } from './rules/thread-files.js';

export interface SeccompOptions {
  /**
   * Extra syscalls to fail with EPERM (the policy's `syscalls.deny`), by x86_64 name. Denial is
   * by name, on each ABI that has the name: with allowIa32, "open" is also denied as i386 open
   * (5), while a name i386 lacks (e.g. "newfstatat", whose i386 twin is "fstatat64") only
   * applies to x86_64. Aliases are not followed on either ABI (denying "accept" leaves "accept4").
   */
  readonly extraDeny?: readonly string[];
  /**
   * Let 32-bit (ia32) code run, filtered by the same rules under their i386 numbers. Off by
   * default: 32-bit binaries are rare in agent workloads, and `int $0x80` from a 64-bit process
   * is a known way to reach syscalls under numbers a filter did not expect.
   */
  readonly allowIa32?: boolean;
  /** The policy sets resources.file_size: add FILE_SIZE_RULES (fallocate modes that skip RLIMIT_FSIZE). */
  readonly fileSize?: boolean;
  /** The plan is supervised: add THREAD_FILES_RULES (no thread with an fd table of its own). */
  readonly supervised?: boolean;
}

export interface CompiledSeccomp {
  /** The raw `struct sock_filter` array to write to bwrap's --seccomp fd. */
  readonly program: Buffer;
  readonly instructions: number;
  /** The rules the program enforces: the built-in ones, then `extraDeny`. */
  readonly rules: readonly SeccompRule[];
}

/** Syscall tables by ABI, as the compiler uses them. */
export const ABIS = [
  { name: 'x86_64', arch: AUDIT_ARCH_X86_64, table: X86_64_SYSCALLS },
  { name: 'i386', arch: AUDIT_ARCH_I386, table: I386_SYSCALLS },
] as const;

/** The number of `name` in `table`, or undefined. (Own properties only: "toString" is not a syscall.) */
export function syscallNumber(table: Readonly<Record<string, number>>, name: string): number | undefined {
  return Object.hasOwn(table, name) ? table[name] : undefined;
}

/** Ward's filter: the built-in rules plus the policy's extra denials. */
export function compileSeccomp(options: SeccompOptions = {}): CompiledSeccomp {
  const extra = (options.extraDeny ?? []).map((name): SeccompRule => {
    if (syscallNumber(X86_64_SYSCALLS, name) === undefined) throw unknownSyscall(name);
    return { syscall: name, action: DENY_EPERM, why: 'Denied by the policy (syscalls.deny).' };
  });
  return compileRules([...builtinRules(options.fileSize ?? false, options.supervised ?? false), ...extra], { allowIa32: options.allowIa32 ?? false });
}

/** The built-in rules a plan gets, before the policy's syscalls.deny. */
export function builtinRules(fileSize: boolean, supervised = false): readonly SeccompRule[] {
  if (!fileSize && !supervised) return SECCOMP_RULES;
  return [...SECCOMP_RULES, ...(fileSize ? FILE_SIZE_RULES : []), ...(supervised ? THREAD_FILES_RULES : [])];
}

function unknownSyscall(name: string): Error {
  const guess = nearest(name, Object.keys(X86_64_SYSCALLS));
  // No "syscalls.deny" prefix: the policy compiler wraps this with the key path and the fix.
  return new Error(`"${name}" is not a known x86_64 syscall` + (guess === undefined ? '' : ` (did you mean "${guess}"?)`));
}

/** The closest name by edit distance, if it is close enough to be a typo. */
function nearest(name: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of names) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** Compiles any rule list (the built-in list is `SECCOMP_RULES`). Throws on a malformed rule. */
export function compileRules(rules: readonly SeccompRule[], options: { readonly allowIa32: boolean }): CompiledSeccomp {
  rules.forEach(validate);
  const [x86_64, i386] = ABIS;
  const items: AsmItem[] = [
    ldAbs(OFFSET_ARCH),
    jeq(x86_64.arch, null, options.allowIa32 ? 'i386' : RET_KILL),
    ldAbs(OFFSET_NR),
    // x32 calls arrive with the x86_64 arch token and nr | 0x40000000. The kernel routes them to
    // another table, so the x86_64 rules do not describe them: kill rather than guess.
    jge(X32_SYSCALL_BIT, RET_KILL, null),
    ...dispatch(x86_64.name, x86_64.table, rules),
  ];
  if (options.allowIa32) {
    items.push(label('i386'), jeq(i386.arch, null, RET_KILL), ldAbs(OFFSET_NR), ...dispatch(i386.name, i386.table, rules));
  }
  items.push(...returns(rules));
  const program = assemble(items);
  return { program: encode(program), instructions: program.length, rules: [...rules] };
}

function validate(rule: SeccompRule): void {
  const where = `seccomp rule for "${rule.syscall}"`;
  if (!ABIS.some((abi) => syscallNumber(abi.table, rule.syscall) !== undefined)) {
    throw new Error(`${where}: no such syscall on x86_64 or i386`);
  }
  const { action, when } = rule;
  if (action !== 'kill' && (!Number.isInteger(action.errno) || action.errno < 1 || action.errno > MAX_ERRNO)) {
    throw new Error(`${where}: errno ${action.errno} is not in 1..${MAX_ERRNO}`);
  }
  if (when === undefined) return;
  if (!Number.isInteger(when.arg) || when.arg < 0 || when.arg > 5) throw new Error(`${where}: argument ${when.arg} is not in 0..5`);
  if ('anyBits' in when) {
    if (when.anyBits <= 0n || when.anyBits > 0xffff_ffff_ffff_ffffn) throw new Error(`${where}: anyBits mask must be a non-zero u64`);
  } else if ('noneOf32' in when) {
    if (!Number.isInteger(when.noneOf32) || when.noneOf32 <= 0 || when.noneOf32 > 0xffffffff) throw new Error(`${where}: noneOf32 mask must be a non-zero u32`);
  } else if ('masked32' in when) {
    if (!Number.isInteger(when.masked32) || when.masked32 <= 0 || when.masked32 > 0xffffffff) throw new Error(`${where}: masked32 mask must be a non-zero u32`);
    if (!Number.isInteger(when.equals32) || when.equals32 < 0 || (when.equals32 & ~when.masked32) !== 0) throw new Error(`${where}: equals32 must have no bit outside masked32`);
  } else {
    const values = 'in32' in when ? when.in32 : when.notIn32;
    if (values.length === 0) throw new Error(`${where}: empty value list`);
    for (const v of values) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`${where}: ${v} is not a u32`);
    }
  }
}

const RET_KILL = 'ret:kill';
const RET_ALLOW = 'ret:allow';
const retLabel = (action: RuleAction): string => (action === 'kill' ? RET_KILL : `ret:errno:${action.errno}`);

/** The shared return instructions, one per distinct outcome, at the end of the program. */
function returns(rules: readonly SeccompRule[]): AsmItem[] {
  const errnos = [...new Set(rules.flatMap((r) => (r.action === 'kill' ? [] : [r.action.errno])))].sort((a, b) => a - b);
  return [
    label(RET_ALLOW),
    ret(SECCOMP_RET_ALLOW),
    label(RET_KILL),
    ret(SECCOMP_RET_KILL_PROCESS),
    ...errnos.flatMap((e) => [label(retLabel({ errno: e })), ret(SECCOMP_RET_ERRNO | e)]),
  ];
}

/** Syscall numbers with their rules, in number order. Rules after an unconditional one can never match and are dropped. */
function groupByNumber(table: Readonly<Record<string, number>>, rules: readonly SeccompRule[]): [number, SeccompRule[]][] {
  const groups = new Map<number, SeccompRule[]>();
  for (const rule of rules) {
    const nr = syscallNumber(table, rule.syscall);
    if (nr === undefined) continue; // e.g. vm86 on x86_64: the ABI has no such call
    const group = groups.get(nr) ?? [];
    if (group.at(-1)?.when === undefined && group.length > 0) continue;
    group.push(rule);
    groups.set(nr, group);
  }
  return [...groups].sort(([a], [b]) => a - b);
}

/** Leaves of the search tree compare this many numbers one after the other. */
const LEAF_SIZE = 4;

/**
 * A binary search on A (the syscall number) over the numbers that have rules. A number whose
 * first rule is unconditional jumps straight to its return; one with argument tests jumps to
 * a body emitted after the tree. Everything else reaches ALLOW.
 */
function dispatch(abi: string, table: Readonly<Record<string, number>>, rules: readonly SeccompRule[]): AsmItem[] {
  const groups = groupByNumber(table, rules);
  const bodyLabel = (nr: number) => `${abi}:body:${nr}`;
  const entry = ([nr, group]: [number, SeccompRule[]]): string =>
    group[0]!.when === undefined ? retLabel(group[0]!.action) : bodyLabel(nr);

  const tree: AsmItem[] = [];
  const search = (lo: number, hi: number): void => {
    if (hi - lo <= LEAF_SIZE) {
      for (let i = lo; i < hi; i++) {
        const g = groups[i]!;
        tree.push(jeq(g[0], entry(g), i === hi - 1 ? RET_ALLOW : null));
      }
      if (hi === lo) tree.push(ja(RET_ALLOW));
      return;
    }
    const mid = (lo + hi) >> 1;
    const right = `${abi}:nr>=${groups[mid]![0]}`;
    tree.push(jge(groups[mid]![0], right, null));
    search(lo, mid);
    tree.push(label(right));
    search(mid, hi);
  };
  search(0, groups.length);

  const bodies = groups
    .filter(([, group]) => group[0]!.when !== undefined)
    .flatMap(([nr, group]) => [
      label(bodyLabel(nr)),
      ...group.flatMap((rule, i): AsmItem[] => {
        const next = i === group.length - 1 ? RET_ALLOW : `${bodyLabel(nr)}:${i + 1}`;
        const head = i === 0 ? [] : [label(`${bodyLabel(nr)}:${i}`)];
        if (rule.when === undefined) return [...head, ja(retLabel(rule.action))];
        return [...head, ...argTest(rule.when, retLabel(rule.action), next)];
      }),
    ]);
  return [...tree, ...bodies];
}

/** Loads the argument and jumps to `match` or `noMatch`. Clobbers A. */
function argTest(test: ArgTest, match: string, noMatch: string): AsmItem[] {
  const low = argOffset(test.arg);
  const high = low + 4;
  if ('anyBits' in test) {
    // Each half of the mask that has bits is tested against its half of the argument.
    const halves = [
      { offset: low, mask: Number(test.anyBits & 0xffffffffn) },
      { offset: high, mask: Number(test.anyBits >> 32n) },
    ].filter((h) => h.mask !== 0);
    return halves.flatMap((h, i) => [ldAbs(h.offset), jset(h.mask, match, i === halves.length - 1 ? noMatch : null)]);
  }
  // A bit of the mask set: the required flag is there, so the rule does not match.
  if ('noneOf32' in test) return [ldAbs(low), jset(test.noneOf32, noMatch, match)];
  if ('masked32' in test) return [ldAbs(low), insn(BPF_ALU | BPF_AND | BPF_K, test.masked32), jeq(test.equals32, match, noMatch)];
  const inSet = 'in32' in test;
  const values = inSet ? test.in32 : test.notIn32;
  const [hit, miss]: [Target, Target] = inSet ? [match, noMatch] : [noMatch, match];
  return [ldAbs(low), ...values.map((v, i) => jeq(v, hit, i === values.length - 1 ? miss : null))];
}
