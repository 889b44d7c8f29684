/**
 * Namespaces. bwrap builds the sandbox's namespaces before this filter is loaded; nothing inside
 * needs to make more. A new user namespace in particular hands the caller a full set of
 * capabilities over the objects it then creates, which opens code that is otherwise root-only
 * (netfilter, mount, overlayfs...) and has been the entry point of many local privilege
 * escalations. setns could join a namespace through an inherited or passed-in fd.
 */
import { DENY_ENOSYS, DENY_EPERM, type SeccompRule } from '../rule.js';

/** Every CLONE_NEW* flag (include/uapi/linux/sched.h). */
export const CLONE_NEWTIME = 0x00000080;
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
export const CLONE_NEW_ANY =
  CLONE_NEWTIME | CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;

export const rules: readonly SeccompRule[] = [
  {
    syscall: 'unshare',
    action: DENY_EPERM,
    why: 'Creates namespaces (a user namespace brings fresh capabilities and root-only kernel code within reach). Denied whatever the flags: the non-namespace uses (CLONE_FS, CLONE_FILES) are rare.',
  },
  {
    syscall: 'setns',
    action: DENY_EPERM,
    why: 'Joins another namespace through an fd (e.g. a leaked /proc/PID/ns/* or pidfd), which could lead out of the sandbox.',
  },
  {
    syscall: 'clone',
    action: DENY_EPERM,
    when: { arg: 0, anyBits: BigInt(CLONE_NEW_ANY) },
    why: 'fork and threads stay allowed; clone with any CLONE_NEW* flag is unshare by another name. The flags are the first argument on both x86_64 and i386. The kernel only reads its low 32 bits, and every CLONE_NEW* bit is there. CLONE_NEWTIME (0x80) overlaps the exit-signal byte of clone(), but no signal number has that bit, so no legitimate call is refused.',
  },
  {
    syscall: 'clone3',
    action: DENY_ENOSYS,
    why: 'clone3 takes its flags in a struct in memory, which seccomp cannot read, so the filter cannot tell a thread from a new namespace. ENOSYS ("no such call") makes glibc (pthread_create, posix_spawn) fall back to clone, whose flags are checked above.',
  },
];
