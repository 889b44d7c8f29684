/**
 * Translation validation for supervised mode's notify filter (src/supervisor/filter.ts): the
 * program launch() installs for a plan with dynamic rules is run through the same BPF
 * interpreter as the static filter, on every syscall number of every ABI, and each verdict is
 * compared with what the plan says.
 *
 * What the plan says (independent of the filter compiler):
 * - x86_64 (nr < X32_SYSCALL_BIT): USER_NOTIF for exactly the plan's supervised syscalls plus
 *   execve and execveat (always notified: the supervisor drops its view of a process's memory on
 *   exec), ALLOW for every other number, known or not. A notified call the plan did not ask for
 *   costs a round trip; a supervised call that is ALLOWed escapes the rules: both are findings.
 * - x32 (nr >= X32_SYSCALL_BIT) and i386: kill (the supervisor decodes x86_64 arguments only).
 * - any other architecture: kill.
 * - calls notified under a condition on a register argument (the plan's rules.conditions, the
 *   ones the installed program is compiled with): open and openat under `writeOpens` are
 *   USER_NOTIF exactly when their flags could write the file, fcntl under `setfl` exactly when
 *   its command is F_SETFL, and ALLOW otherwise. What "could write" means is written here from
 *   open(2), not taken from the filter compiler: an access mode other than O_RDONLY (O_WRONLY,
 *   O_RDWR, and 3, which the kernel checks as read+write), O_CREAT or O_TRUNC (O_TMPFILE needs a
 *   write access mode). O_APPEND alone does not write (O_RDONLY|O_APPEND reads). The kernel
 *   reads both arguments as 32-bit ints, so the upper half of the register must not change
 *   the verdict either way. Each conditional call is run with values on both sides of its
 *   condition, with the other arguments all zeros and all ones (a filter that tests the wrong
 *   argument disagrees on one of the two).
 * Only the notify filter is judged here; the static filter (./seccomp.ts) still decides first
 * whatever it refuses (the kernel keeps the most restrictive verdict of the two).
 */
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT } from '../seccomp/abi.js';
import { I386_SYSCALLS } from '../seccomp/arch/i386.js';
import { X86_64_SYSCALLS } from '../seccomp/arch/x86_64.js';
import { BpfCheckError, checkFilter, execute, seccompData, verdictOf } from '../seccomp/interpret.js';
import { ALWAYS_NOTIFIED, type NotifyConditions } from '../supervisor/filter.js';
import type { Finding } from './finding.js';

export interface NotifyValidation {
  findings: Finding[];
  /** Distinct (arch, nr) pairs run. */
  syscalls: number;
}

const FOREIGN_ARCHES: readonly [string, number][] = [
  ['aarch64', 0xc00000b7],
  ['arm', 0x40000028],
  ['riscv64', 0xc00000f3],
];

// open(2) flags and fcntl(2) commands (x86_64, asm-generic values), for the conditional calls.
const O_ACCMODE = 0o3;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;
const FLAG_NAMES: readonly [string, number][] = [
  ['O_WRONLY', 0o1], ['O_RDWR', 0o2], ['O_CREAT', O_CREAT], ['O_EXCL', 0o200], ['O_TRUNC', O_TRUNC], ['O_APPEND', 0o2000],
  ['O_NONBLOCK', 0o4000], ['O_DIRECTORY', 0o200000], ['O_NOFOLLOW', 0o400000], ['O_CLOEXEC', 0o2000000], ['O_PATH', 0o10000000], ['O_TMPFILE', 0o20000000],
];
const F_SETFL = 4;

/** Could an open with these flags change the file? (See the file comment; the kernel reads an int.) */
function openCouldWrite(flags: bigint): boolean {
  const f = Number(flags & 0xffffffffn);
  return (f & O_ACCMODE) !== 0 || (f & O_CREAT) !== 0 || (f & O_TRUNC) !== 0;
}

/** Flag values to run open/openat with: every access mode with the flags that matter, and every single bit. */
function openFlagCases(): bigint[] {
  const extras = [0, O_CREAT, O_TRUNC, 0o2000, O_CREAT | 0o200, O_CREAT | 0o2000, 0o2000 | O_TRUNC, 0o2000000 | 0o200000, 0o10000000, 0o20200000, 0o4000 | 0o400000];
  const low = new Set<number>();
  for (let acc = 0; acc <= 3; acc++) for (const e of extras) low.add((acc | e) >>> 0);
  for (let bit = 0; bit < 32; bit++) low.add((1 << bit) >>> 0);
  low.add(0xffffffff);
  return withHighHalves([...low]);
}

/** fcntl commands: the small ones, the Linux-specific range (F_LINUX_SPECIFIC_BASE 1024), and the corners. */
function fcntlCmdCases(): bigint[] {
  const low: number[] = [];
  for (let c = 0; c <= 64; c++) low.push(c);
  for (let c = 1024; c <= 1040; c++) low.push(c);
  low.push(F_SETFL | 0x100, F_SETFL | 0x10000, 0xffffffff);
  return withHighHalves(low);
}

/** Each value as is, and with garbage in the upper 32 bits (which the kernel ignores). */
function withHighHalves(low: readonly number[]): bigint[] {
  return low.flatMap((v) => [BigInt(v), (1n << 32n) | BigInt(v), 0xffffffff00000000n | BigInt(v)]);
}

function describeFlags(v: bigint): string {
  const f = Number(v & 0xffffffffn);
  const names = FLAG_NAMES.filter(([, b]) => (f & b) === b && (b !== 0o1 || (f & O_ACCMODE) === 1) && (b !== 0o2 || (f & O_ACCMODE) === 2)).map(([n]) => n);
  if ((f & O_ACCMODE) === 3) names.unshift('O_ACCMODE');
  return `0x${v.toString(16)}${names.length > 0 ? ` (${names.join('|')})` : f === 0 ? ' (O_RDONLY)' : ''}`;
}

/**
 * Runs `program` (the notify filter's bytes) against the supervised set `syscalls` (x86_64 names)
 * and the argument conditions it was compiled with (the plan's rules.conditions).
 */
export function validateNotifyFilter(program: Buffer, syscalls: readonly string[], conditions: NotifyConditions = {}): NotifyValidation {
  const findings: Finding[] = [];
  let insns;
  try {
    insns = checkFilter(program);
  } catch (e) {
    const why = e instanceof BpfCheckError ? e.message : String(e);
    return { findings: [{ layer: 'seccomp', subject: 'notify filter', expected: 'a program the kernel accepts', actual: `rejected: ${why}` }], syscalls: 0 };
  }
  const notified = new Set([...syscalls, ...ALWAYS_NOTIFIED]);
  const nameOf = new Map(Object.entries(X86_64_SYSCALLS).map(([name, nr]) => [nr, name]));
  const maxNr = Math.max(...nameOf.keys()) + 64;
  let runs = 0;
  const judge = (arch: number, archName: string, nr: number, expected: 'user_notif' | 'allow' | 'kill_process') => {
    runs++;
    const v = verdictOf(execute(insns, seccompData({ nr, arch })));
    const action = v.action === 'kill_thread' ? 'kill_process' : v.action;
    if (action === expected) return;
    const name = arch === AUDIT_ARCH_X86_64 && nr < X32_SYSCALL_BIT ? nameOf.get(nr) ?? '?' : '';
    findings.push({
      layer: 'seccomp',
      subject: `notify filter: ${archName} ${name ? `${name} ` : ''}(${nr})`,
      expected: expected === 'user_notif' ? 'USER_NOTIF (decided by the supervisor)' : expected.toUpperCase(),
      actual: v.action.toUpperCase(),
    });
  };
  for (let nr = 0; nr <= maxNr; nr++) {
    const name = nameOf.get(nr);
    judge(AUDIT_ARCH_X86_64, 'x86_64', nr, name !== undefined && notified.has(name) ? 'user_notif' : 'allow');
    judge(AUDIT_ARCH_X86_64, 'x32', (nr | X32_SYSCALL_BIT) >>> 0, 'kill_process');
  }
  // The conditional calls, on both sides of each condition.
  const conditional: { name: string; arg: number; values: bigint[]; notifies: (v: bigint) => boolean; what: (v: bigint) => string }[] = [
    { name: 'open', arg: 1, values: openFlagCases(), notifies: (v) => conditions.writeOpens === true && openCouldWrite(v), what: (v) => `flags=${describeFlags(v)}` },
    { name: 'openat', arg: 2, values: openFlagCases(), notifies: (v) => conditions.writeOpens === true && openCouldWrite(v), what: (v) => `flags=${describeFlags(v)}` },
    { name: 'fcntl', arg: 1, values: fcntlCmdCases(), notifies: (v) => conditions.setfl === true && (v & 0xffffffffn) === BigInt(F_SETFL), what: (v) => `cmd=0x${v.toString(16)}${(v & 0xffffffffn) === BigInt(F_SETFL) ? ' (F_SETFL)' : (v & 0xffffffffn) === 3n ? ' (F_GETFL)' : ''}` },
  ];
  for (const c of conditional) {
    const nr = X86_64_SYSCALLS[c.name]!;
    for (const v of c.values) {
      for (const fill of [0n, 0xffffffffffffffffn]) {
        runs++;
        const args = Array.from({ length: 6 }, (_, i) => (i === c.arg ? v : fill));
        const got = verdictOf(execute(insns, seccompData({ nr, arch: AUDIT_ARCH_X86_64, args })));
        const want = notified.has(c.name) || c.notifies(v) ? 'user_notif' : 'allow';
        if (got.action === want) continue;
        findings.push({
          layer: 'seccomp',
          subject: `notify filter: x86_64 ${c.name} (${nr}) ${c.what(v)}${fill === 0n ? '' : ', other arguments all ones'}`,
          expected: want === 'user_notif' ? `USER_NOTIF (${notified.has(c.name) ? 'supervised whatever its arguments' : c.name === 'fcntl' ? 'F_SETFL can clear O_APPEND' : 'an open that could write'})` : 'ALLOW (the condition does not hold)',
          actual: got.action.toUpperCase(),
        });
      }
    }
  }
  for (const nr of new Set(Object.values(I386_SYSCALLS))) judge(AUDIT_ARCH_I386, 'i386', nr, 'kill_process');
  for (const [name, arch] of FOREIGN_ARCHES) judge(arch, name, 0, 'kill_process');
  // The unsigned corners of the number: -1 (a cancelled syscall) and the largest values.
  for (const nr of [0xffffffff, 0x7fffffff]) judge(AUDIT_ARCH_X86_64, nr >= X32_SYSCALL_BIT ? 'x32' : 'x86_64', nr, 'kill_process');
  return { findings, syscalls: runs };
}
