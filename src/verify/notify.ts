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
 * Only the notify filter is judged here; the static filter (./seccomp.ts) still decides first
 * whatever it refuses (the kernel keeps the most restrictive verdict of the two).
 */
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT } from '../seccomp/abi.js';
import { I386_SYSCALLS } from '../seccomp/arch/i386.js';
import { X86_64_SYSCALLS } from '../seccomp/arch/x86_64.js';
import { BpfCheckError, checkFilter, execute, seccompData, verdictOf } from '../seccomp/interpret.js';
import { ALWAYS_NOTIFIED } from '../supervisor/filter.js';
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

/** Runs `program` (the notify filter's bytes) against the supervised set `syscalls` (x86_64 names). */
export function validateNotifyFilter(program: Buffer, syscalls: readonly string[]): NotifyValidation {
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
  for (const nr of new Set(Object.values(I386_SYSCALLS))) judge(AUDIT_ARCH_I386, 'i386', nr, 'kill_process');
  for (const [name, arch] of FOREIGN_ARCHES) judge(arch, name, 0, 'kill_process');
  // The unsigned corners of the number: -1 (a cancelled syscall) and the largest values.
  for (const nr of [0xffffffff, 0x7fffffff]) judge(AUDIT_ARCH_X86_64, nr >= X32_SYSCALL_BIT ? 'x32' : 'x86_64', nr, 'kill_process');
  return { findings, syscalls: runs };
}
