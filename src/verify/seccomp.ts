/**
 * Translation validation for the seccomp filter: instead of trusting the BPF compiler, run the
 * program Ward is about to hand the kernel (through the same interpreter as `runFilter`) on
 * every syscall number of every ABI, and on a generated set of argument values for every rule
 * that inspects an argument, and compare each verdict with what the rule list says.
 *
 * What the rule list says (the reference meaning, independent of the compiler):
 * - x86_64 (AUDIT_ARCH_X86_64, nr < X32_SYSCALL_BIT): the first rule, in list order, whose
 *   syscall name has this number in the x86_64 table and whose `when` passes (`ruleMatches`)
 *   decides; no rule means ALLOW.
 * - x32 (AUDIT_ARCH_X86_64, nr >= X32_SYSCALL_BIT): kill. The rules name x86_64 calls, and x32
 *   numbers route to another table.
 * - i386 (AUDIT_ARCH_I386): like x86_64 with the i386 table when ia32 is allowed, else kill.
 * - any other architecture: kill.
 *
 * Argument values are a finite sample, chosen where a compiled test can go wrong: each bit of
 * an anyBits mask alone, the mask, its complement, 0, values with only high-32 bits set, each
 * listed in32/notIn32 value, each bit of a noneOf32 mask set alone and cleared alone, a masked32
 * test's value with each bit of its mask flipped, the values one above and below, the same with high bits set (the
 * kernel ignores them for an int argument), and a few pseudo-random values from a fixed seed.
 * Every value is tried with the other arguments all 0 and all 1s.
 */
import { ABIS, syscallNumber } from '../seccomp/compile.js';
import { BpfCheckError, checkFilter, execute, seccompData, verdictOf, type Verdict } from '../seccomp/interpret.js';
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, ENOSYS, EPERM, X32_SYSCALL_BIT } from '../seccomp/abi.js';
import { DENY_EPERM, ruleMatches, type ArgTest, type RuleAction, type SeccompRule } from '../seccomp/rule.js';
import type { Finding } from './finding.js';

export interface SeccompExpectation {
  /** The rules the filter must enforce, in order (normally SECCOMP_RULES). */
  readonly rules: readonly SeccompRule[];
  /** Whether 32-bit (i386) calls are filtered by the rules (true) or killed (false). */
  readonly allowIa32: boolean;
  /** The policy's syscalls.deny: x86_64 names failed with EPERM, after the built-in rules. */
  readonly extraDeny: readonly string[];
}

export interface SeccompValidation {
  findings: Finding[];
  /** Distinct (arch, nr) pairs run. */
  syscalls: number;
  /** Runs with generated argument values, for rules that inspect an argument. */
  argCases: number;
}

/** Architectures the filter must refuse outright (aarch64, arm, riscv64, and a zero token). */
const FOREIGN_ARCHES: readonly [string, number][] = [
  ['aarch64', 0xc00000b7],
  ['arm', 0x40000028],
  ['riscv64', 0xc00000f3],
  ['arch0', 0],
];

const ALL_ONES = 0xffff_ffff_ffff_ffffn;

type Expected = RuleAction | 'allow';

export function validateSeccomp(program: Buffer, expected: SeccompExpectation): Finding[] {
  return runSeccompValidation(program, expected).findings;
}

export function runSeccompValidation(program: Buffer, expected: SeccompExpectation): SeccompValidation {
  const findings: Finding[] = [];
  let insns;
  try {
    insns = checkFilter(program);
  } catch (e) {
    if (!(e instanceof BpfCheckError)) throw e;
    return { findings: [{ layer: 'seccomp', subject: 'program', expected: 'a filter the kernel accepts', actual: e.message }], syscalls: 0, argCases: 0 };
  }
  const run = (arch: number, nr: number, args: readonly bigint[]): Verdict => verdictOf(execute(insns, seccompData({ nr, arch, args })));

  const rules: SeccompRule[] = [
    ...expected.rules,
    ...expected.extraDeny.map((name): SeccompRule => ({ syscall: name, action: DENY_EPERM, why: 'syscalls.deny' })),
  ];
  let syscalls = 0;
  let argCases = 0;
  const report = (f: Finding): void => void findings.push(f);
  const compare = (abi: string, arch: number, nr: number, args: readonly bigint[], want: Expected, argNote: string): void => {
    const got = run(arch, nr, args);
    if (!sameVerdict(want, got)) {
      report({ layer: 'seccomp', subject: `${abi} ${nameOf(abi, nr)}${argNote}`, expected: describeExpected(want), actual: describeVerdict(got) });
    }
  };

  const [x86_64, i386] = ABIS;
  const filtered = [{ abi: x86_64, filtered: true }, { abi: i386, filtered: expected.allowIa32 }];
  for (const { abi, filtered: isFiltered } of filtered) {
    const max = Math.max(...Object.values(abi.table));
    for (let nr = 0; nr <= max + 16; nr++) {
      syscalls++;
      const own = rules.filter((r) => syscallNumber(abi.table, r.syscall) === nr);
      const decide = (args: readonly bigint[]): Expected => {
        if (!isFiltered) return 'kill';
        return own.find((r) => ruleMatches(r, args))?.action ?? 'allow';
      };
      for (const fill of [0n, ALL_ONES]) {
        const args = [fill, fill, fill, fill, fill, fill];
        compare(abi.name, abi.arch, nr, args, decide(args), fill === 0n ? '' : ' args=all-ones');
      }
      if (!isFiltered) continue;
      const tests = own.flatMap((r) => (r.when ? [r.when] : []));
      const seen = new Set<string>();
      for (const test of tests) {
        for (const value of argValues(test)) {
          for (const fill of [0n, ALL_ONES]) {
            const key = `${test.arg}:${value}:${fill}`;
            if (seen.has(key)) continue;
            seen.add(key);
            const args = [fill, fill, fill, fill, fill, fill];
            args[test.arg] = value;
            argCases++;
            const note = ` args[${test.arg}]=0x${value.toString(16)}${fill === 0n ? '' : ' (others all-ones)'}`;
            compare(abi.name, abi.arch, nr, args, decide(args), note);
          }
        }
      }
    }
  }

  // x32: every x86_64 number with the x32 bit, and the edges of that range.
  const x32 = [...new Set([...Object.values(x86_64.table).map((n) => (n | X32_SYSCALL_BIT) >>> 0), X32_SYSCALL_BIT, 0x7fffffff, 0xffffffff])];
  for (const nr of x32) {
    syscalls++;
    const got = run(AUDIT_ARCH_X86_64, nr, []);
    if (got.action !== 'kill_process') {
      report({ layer: 'seccomp', subject: `x32 ${nameOf('x32', nr)}`, expected: 'kill', actual: describeVerdict(got) });
    }
  }

  // Other architectures: their numbers mean other syscalls, so everything must be killed.
  const sample = [0, 1, 59, 222, 435, 0x40000000 + 1, 0xffffffff];
  for (const [name, arch] of FOREIGN_ARCHES) {
    if (arch === AUDIT_ARCH_X86_64 || arch === AUDIT_ARCH_I386) continue;
    for (const nr of sample) {
      syscalls++;
      const got = run(arch, nr, []);
      if (got.action !== 'kill_process') {
        report({ layer: 'seccomp', subject: `${name} (arch 0x${arch.toString(16)}) nr ${nr}`, expected: 'kill', actual: describeVerdict(got) });
      }
    }
  }
  return { findings, syscalls, argCases };
}

/** The argument values tried for one test (all u64). */
export function argValues(test: ArgTest): bigint[] {
  const out = new Set<bigint>([0n, ALL_ONES, 0xffff_ffff_0000_0000n, 0x1_0000_0000n, 0x8000_0000_0000_0000n, 0xffff_ffffn]);
  if ('anyBits' in test) {
    const mask = test.anyBits;
    out.add(mask);
    out.add(~mask & ALL_ONES);
    out.add((mask << 32n) & ALL_ONES);
    for (let bit = 0n; bit < 64n; bit++) if ((mask >> bit) & 1n) out.add(1n << bit);
  } else if ('noneOf32' in test) {
    const mask = BigInt(test.noneOf32);
    for (const v of [mask, ~mask & 0xffff_ffffn]) {
      out.add(v);
      out.add(v | 0xffff_ffff_0000_0000n);
    }
    for (let bit = 0n; bit < 32n; bit++) {
      if ((mask >> bit) & 1n) {
        out.add(1n << bit);
        out.add(~(1n << bit) & 0xffff_ffffn);
      }
    }
  } else if ('masked32' in test) {
    // The expected value, and it with each bit of the mask flipped, with and without high bits.
    const mask = BigInt(test.masked32);
    const eq = BigInt(test.equals32);
    for (let bit = 0n; bit < 32n; bit++) {
      if (!((mask >> bit) & 1n)) continue;
      for (const v of [eq, eq ^ (1n << bit), (eq ^ (1n << bit)) | (~mask & 0xffff_ffffn), eq | (~mask & 0xffff_ffffn)]) {
        out.add(v);
        out.add(v | 0xffff_ffff_0000_0000n);
      }
    }
  } else {
    const values = 'in32' in test ? test.in32 : test.notIn32;
    for (const v of values) {
      const b = BigInt(v);
      for (const near of [b, b - 1n, b + 1n]) {
        const low = BigInt.asUintN(32, near);
        out.add(low);
        out.add(low | 0x1_0000_0000n);
        out.add(low | 0xffff_ffff_0000_0000n);
      }
    }
  }
  const rand = seeded(0x5eed_0000_0000_0001n ^ BigInt(test.arg));
  for (let i = 0; i < 6; i++) out.add(rand());
  return [...out].map((v) => BigInt.asUintN(64, v));
}

/** xorshift64*: a fixed-seed generator, so a run is reproducible. */
function seeded(seed: bigint): () => bigint {
  let s = BigInt.asUintN(64, seed) || 1n;
  return () => {
    s ^= s >> 12n;
    s = BigInt.asUintN(64, s ^ (s << 25n));
    s ^= s >> 27n;
    return BigInt.asUintN(64, s * 0x2545f4914f6cdd1dn);
  };
}

function sameVerdict(want: Expected, got: Verdict): boolean {
  if (want === 'allow') return got.action === 'allow';
  if (want === 'kill') return got.action === 'kill_process';
  return got.action === 'errno' && got.data === want.errno;
}

function errnoName(e: number): string {
  return e === EPERM ? 'EPERM' : e === ENOSYS ? 'ENOSYS' : String(e);
}

function describeExpected(want: Expected): string {
  if (want === 'allow' || want === 'kill') return want;
  return `errno ${errnoName(want.errno)}`;
}

function describeVerdict(v: Verdict): string {
  if (v.action === 'allow') return 'allow';
  if (v.action === 'kill_process') return 'kill';
  if (v.action === 'errno') return `errno ${errnoName(v.data)}`;
  return `${v.action} (0x${v.raw.toString(16)})`;
}

const NAMES = new Map<string, Map<number, string>>();
function nameOf(abi: string, nr: number): string {
  const table = ABIS.find((a) => a.name === (abi === 'x32' ? 'x86_64' : abi))?.table;
  if (!table) return `#${nr}`;
  let names = NAMES.get(abi);
  if (!names) {
    names = new Map();
    for (const [name, n] of Object.entries(table)) if (!names.has(n)) names.set(n, name);
    NAMES.set(abi, names);
  }
  const base = abi === 'x32' ? (nr & ~X32_SYSCALL_BIT) >>> 0 : nr;
  const name = names.get(base);
  const shown = abi === 'x32' ? `0x${nr.toString(16)}` : String(nr);
  return name === undefined ? `#${shown}` : `${name} (${shown})`;
}
