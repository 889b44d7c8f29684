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
 *     jeq NR_C ? IF_C ...                   conditional ones (NotifyConditions)
 *     ret ALLOW
 *   IF_C: ld [args[i] low]; jset/jeq K ? NOTIFY : ALLOW
 *   NOTIFY: ret USER_NOTIF
 *   KILL:   ret KILL_PROCESS
 *
 * The kernel runs every installed filter and keeps the most restrictive answer (KILL > TRAP >
 * ERRNO > USER_NOTIF > ALLOW), so a call the static filter refuses is refused without a
 * notification: this filter can only add decisions, never lift one.
 */
import { argOffset, AUDIT_ARCH_X86_64, OFFSET_ARCH, OFFSET_NR, SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_USER_NOTIF, X32_SYSCALL_BIT } from '../seccomp/abi.js';
import { X86_64_SYSCALLS } from '../seccomp/arch/x86_64.js';
import { syscallNumber } from '../seccomp/compile.js';
import { assemble, encode, jeq, jge, jset, label, ldAbs, ret, type AsmItem } from '../seccomp/bpf.js';

/**
 * The syscalls the supervisor can decide without trusting memory the sandbox can change after
 * the decision:
 *   - opens are performed by the supervisor itself and the fd injected (decided on the path of
 *     what was actually opened);
 *   - exec is decided on the path read and allowed with CONTINUE (see SECURITY-MODEL.md for
 *     what that leaves open);
 *   - PATH_OPS (writes by path) are performed by the supervisor on the resolved names;
 *   - FD_OPS are decided on the caller's own open file (pidfd_getfd) and performed on it;
 *   - BLIND ones (connect) are decided without reading their arguments at all: a refusal is an
 *     errno, an allowance is CONTINUE, safe because nothing in memory was decided on. A decision
 *     on *which* address (emulating connect) is not built.
 */
export const BLIND = ['connect'] as const;
/**
 * Writes by path that are not opens. Each is performed by the supervisor itself (worker.ts,
 * handlePathOp): it resolves the parent directory beneath the sandbox's root, decides on the
 * resolved path and runs the call relative to that directory fd; it never CONTINUEs.
 */
export const PATH_OPS = [
  'unlink', 'unlinkat', 'rmdir', 'rename', 'renameat', 'renameat2', 'link', 'linkat', 'symlink', 'symlinkat', 'truncate',
  'mkdir', 'mkdirat', 'mknod', 'mknodat',
  'chmod', 'fchmodat', 'fchmodat2', 'chown', 'lchown', 'fchownat', 'utime', 'utimes', 'futimesat', 'utimensat',
  'setxattr', 'lsetxattr', 'removexattr', 'lremovexattr', 'setxattrat', 'removexattrat',
  // The same metadata writes on an fd: decided on the caller's open file (pidfd_getfd).
  'fchmod', 'fchown', 'fsetxattr', 'fremovexattr',
] as const;
/**
 * Calls on an fd that append-only files need decided (worker.ts, handleFdOp): the supervisor takes
 * the caller's open file itself (pidfd_getfd: the same open file description, so a racing dup2
 * cannot swap it after the decision), decides on what it is, and performs the call on it.
 * pwritev2 is decided on its flags register only (RWF_NOAPPEND), io_setup is refused (Linux AIO
 * takes RWF_NOAPPEND in memory the supervisor cannot pin).
 */
export const FD_OPS = ['ftruncate', 'fallocate', 'fcntl', 'pwritev2', 'io_setup'] as const;
export const SUPERVISABLE = ['open', 'openat', 'openat2', 'creat', 'execve', 'execveat', ...BLIND, ...PATH_OPS, ...FD_OPS] as const;
export type SupervisedSyscall = (typeof SUPERVISABLE)[number];

/**
 * Always notified, whatever was asked: an exec replaces the process's memory, and the
 * supervisor must drop its cached /proc/PID/mem handle for that pid (a vfork child's handle
 * would otherwise keep reading its parent's memory). Without a rule on exec these are answered
 * with CONTINUE at once, a decision that reads no memory.
 */
export const ALWAYS_NOTIFIED: readonly SupervisedSyscall[] = ['execve', 'execveat'];

/**
 * Syscalls notified only when their (register) arguments say so, so the common case stays in the
 * kernel: `writeOpens` hands open/openat to the supervisor only when the flags could write
 * (O_WRONLY, O_RDWR, O_CREAT or O_TRUNC): read-only opens are left to Landlock; `setfl` hands
 * fcntl over only for F_SETFL (the one command that can clear O_APPEND). A syscall also listed
 * unconditionally is always notified.
 *
 * Translation validation (src/verify/notify.ts) runs the program compiled with these
 * conditions, with argument values on both sides of each, against its own definition of a
 * writing open and of F_SETFL.
 */
export interface NotifyConditions {
  writeOpens?: boolean;
  setfl?: boolean;
}
/** The open flags that make open/openat a possible write (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC). */
export const WRITE_OPEN_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000;
const F_SETFL = 4;

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

/** Each condition's calls: the argument (index) and the test that sends the call to the supervisor. */
const CONDITIONAL: readonly { when: keyof NotifyConditions; name: SupervisedSyscall; arg: number; op: 'jset' | 'jeq'; k: number }[] = [
  { when: 'writeOpens', name: 'open', arg: 1, op: 'jset', k: WRITE_OPEN_FLAGS },
  { when: 'writeOpens', name: 'openat', arg: 2, op: 'jset', k: WRITE_OPEN_FLAGS },
  { when: 'setfl', name: 'fcntl', arg: 1, op: 'jeq', k: F_SETFL },
];

/** The calls `conditions` notify under their argument test (unless listed unconditionally). */
export function conditionalCalls(conditions: NotifyConditions = {}): SupervisedSyscall[] {
  return CONDITIONAL.filter((c) => conditions[c.when]).map((c) => c.name);
}

export function compileNotifyFilter(syscalls: readonly string[], conditions: NotifyConditions = {}): NotifyFilter {
  const wanted = new Set([...checkSupervisedSyscalls(syscalls), ...ALWAYS_NOTIFIED]);
  // A call also listed unconditionally is notified whatever its arguments.
  const conditional = CONDITIONAL.filter((c) => conditions[c.when] && !wanted.has(c.name));
  const names = new Map<number, SupervisedSyscall>();
  for (const name of wanted) {
    const nr = syscallNumber(X86_64_SYSCALLS, name);
    if (nr === undefined) throw new Error(`supervise: '${name}' has no x86_64 number`);
    names.set(nr, name);
  }
  const condItems: AsmItem[] = [];
  const condBodies: AsmItem[] = [];
  for (const { name, arg, op, k } of conditional) {
    const nr = syscallNumber(X86_64_SYSCALLS, name)!;
    names.set(nr, name);
    condItems.push(jeq(nr, `if-${name}`, null));
    // The low 32 bits: open flags and fcntl commands are ints.
    condBodies.push(label(`if-${name}`), ldAbs(argOffset(arg)), op === 'jset' ? jset(k, 'notify', 'allow') : jeq(k, 'notify', 'allow'));
  }
  const items: AsmItem[] = [
    ldAbs(OFFSET_ARCH),
    jeq(AUDIT_ARCH_X86_64, null, 'kill'),
    ldAbs(OFFSET_NR),
    jge(X32_SYSCALL_BIT, 'kill', null),
    ...[...wanted].map((s) => syscallNumber(X86_64_SYSCALLS, s)!).sort((a, b) => a - b).map((nr) => jeq(nr, 'notify', null)),
    ...condItems,
    ret(SECCOMP_RET_ALLOW),
    ...condBodies,
    label('allow'),
    ret(SECCOMP_RET_ALLOW),
    label('notify'),
    ret(SECCOMP_RET_USER_NOTIF),
    label('kill'),
    ret(SECCOMP_RET_KILL_PROCESS),
  ];
  const insns = assemble(items);
  return { program: encode(insns), instructions: insns.length, names };
}
