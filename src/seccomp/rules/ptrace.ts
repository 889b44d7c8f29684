/**
 * Reaching into other processes. Everything in the sandbox runs as the same user, so the
 * kernel's own ptrace checks would let one sandboxed process read and write the memory of
 * another (e.g. a long-lived tool or language server the agent's command did not start) or take
 * its file descriptors. Costs: strace and gdb do not work inside the sandbox.
 */
import { DENY_EPERM, type SeccompRule } from '../rule.js';

export const rules: readonly SeccompRule[] = [
  { syscall: 'ptrace', action: DENY_EPERM, why: 'Reads and writes another process\'s memory and registers; also a long history of kernel bugs.' },
  { syscall: 'process_vm_readv', action: DENY_EPERM, why: 'Reads another process\'s memory directly (same permission check as ptrace).' },
  { syscall: 'process_vm_writev', action: DENY_EPERM, why: 'Writes another process\'s memory directly (same permission check as ptrace).' },
  { syscall: 'pidfd_getfd', action: DENY_EPERM, why: 'Copies an open file descriptor out of another process (its sockets, its files).' },
  { syscall: 'kcmp', action: DENY_EPERM, why: 'Compares kernel objects of two processes; its ordering leaks kernel pointer information.' },
];
