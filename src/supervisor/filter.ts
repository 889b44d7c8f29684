/**
 * The notify filter of supervised mode: a second seccomp program, installed by the inner
 * launcher on top of bwrap's static one, that hands the syscalls Ward decides at run time to
 * the supervisor (SECCOMP_RET_USER_NOTIF) and allows everything else.
 *
 *     ld [arch]
 *     jeq AUDIT_ARCH_X86_64 ? : KILL         i386 (int $0x80, 32-bit binaries) is killed: its
 *                                           numbers mean other calls, and the supervisor decodes
 *                                           x86_64 arguments only
 *     ld [nr]
 *     jge X32_SYSCALL_BIT ? KILL            x32: same arch token, another table
 *     jeq NR_1 ? NOTIFY ...                 one test per supervised number, sorted
 *     ret ALLOW
 *   NOTIFY: ret USER_NOTIF
 *   KILL:   ret KILL_PROCESS
 *
 * The kernel runs every installed filter and keeps the most restrictive answer (KILL > TRAP >
 * ERRNO > USER_NOTIF > ALLOW), so a call the static filter refuses is refused without a
 * notification: this filter can only add decisions, never lift one.
 */
import { AUDIT_ARCH_X86_64, OFFSET_ARCH, OFFSET_NR, SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_USER_NOTIF, X32_SYSCALL_BIT } from '../seccomp/abi.js';
import { X86_64_SYSCALLS } from '../seccomp/arch/x86_64.js';
import { syscallNumber } from '../seccomp/compile.js';
import { assemble, encode, jeq, jge, label, ldAbs, ret, type AsmItem } from '../seccomp/bpf.js';

/**
 * The syscalls the supervisor can decide without trusting memory the sandbox can change after
 * the decision:
 *   - opens are performed by the supervisor itself and the fd injected (decided on the path of
 *     what was actually opened);
 *   - exec is decided on the path read and allowed with CONTINUE (see SECURITY-MODEL.md for
 *     what that leaves open);
 *   - BLIND ones are decided without reading their arguments at all: the event has no path or
 *     address, a refusal is an errno, an allowance is CONTINUE, safe because nothing in memory
 *     was decided on. That is what a revocation ("after X, no more connect/unlink/rename") needs;
 *     a decision on *which* address or path (emulating connect, unlink, rename) is not built.
 */
export const BLIND = ['connect', 'unlink', 'unlinkat', 'rename', 'renameat', 'renameat2', 'truncate', 'link', 'linkat', 'symlink', 'symlinkat'] as const;
export const SUPERVISABLE = ['open', 'openat', 'openat2', 'creat', 'execve', 'execveat', ...BLIND] as const;
export type SupervisedSyscall = (typeof SUPERVISABLE)[number];

/**
 * Always notified, whatever was asked: an exec replaces the process's memory, and the
 * supervisor must drop its cached /proc/PID/mem handle for that pid (a vfork child's handle
 * would otherwise keep reading its parent's memory). Without a rule on exec these are answered
 * with CONTINUE at once, a decision that reads no memory.
 */
export const ALWAYS_NOTIFIED: readonly SupervisedSyscall[] = ['execve', 'execveat'];

export interface NotifyFilter {
  /** The raw `struct sock_filter` array the inner launcher installs. */
  readonly program: Buffer;
  readonly instructions: number;
  /** Number -> name of every notified syscall (x86_64). */
  readonly names: ReadonlyMap<number, SupervisedSyscall>;
}

/** Throws, naming the problem and the fix, for a syscall the supervisor cannot decide safely. */
export function checkSupervisedSyscalls(syscalls: readonly string[]): SupervisedSyscall[] {
  if (syscalls.length === 0) throw new Error('supervise: no syscalls given; name at least one of ' + SUPERVISABLE.join(', '));
  for (const s of syscalls) {
    if ((SUPERVISABLE as readonly string[]).includes(s)) continue;
    const known = syscallNumber(X86_64_SYSCALLS, s) !== undefined;
    throw new Error(
      `supervise: '${s}' ${known ? 'cannot be supervised (no safe way to decide it is built)' : 'is not a syscall the supervisor knows'}; supervise only ${SUPERVISABLE.join(', ')}`,
    );
  }
  return [...new Set(syscalls as SupervisedSyscall[])];
}

export function compileNotifyFilter(syscalls: readonly string[]): NotifyFilter {
  const wanted = new Set([...checkSupervisedSyscalls(syscalls), ...ALWAYS_NOTIFIED]);
  const names = new Map<number, SupervisedSyscall>();
  for (const name of wanted) {
    const nr = syscallNumber(X86_64_SYSCALLS, name);
    if (nr === undefined) throw new Error(`supervise: '${name}' has no x86_64 number`);
    names.set(nr, name);
  }
  const items: AsmItem[] = [
    ldAbs(OFFSET_ARCH),
    jeq(AUDIT_ARCH_X86_64, null, 'kill'),
    ldAbs(OFFSET_NR),
    jge(X32_SYSCALL_BIT, 'kill', null),
    ...[...names.keys()].sort((a, b) => a - b).map((nr) => jeq(nr, 'notify', null)),
    ret(SECCOMP_RET_ALLOW),
    label('notify'),
    ret(SECCOMP_RET_USER_NOTIF),
    label('kill'),
    ret(SECCOMP_RET_KILL_PROCESS),
  ];
  const insns = assemble(items);
  return { program: encode(insns), instructions: insns.length, names };
}
