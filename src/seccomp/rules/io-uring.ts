/**
 * io_uring. Operations submitted through the ring (openat, connect, sendmsg...) are executed by
 * the kernel without passing through the syscall entry, so this filter never sees them: a ring
 * would be a way around every other rule. It is also one of the kernel's largest recent sources
 * of privilege escalations, and is disabled for untrusted code in ChromeOS, Android and Google's
 * production servers. Nothing an agent runs needs it; libraries that use it fall back.
 */
import { DENY_EPERM, type SeccompRule } from '../rule.js';

export const rules: readonly SeccompRule[] = [
  { syscall: 'io_uring_setup', action: DENY_EPERM, why: 'Creates a ring whose operations bypass seccomp.' },
  { syscall: 'io_uring_enter', action: DENY_EPERM, why: 'Submits operations to a ring (one could be inherited from outside).' },
  { syscall: 'io_uring_register', action: DENY_EPERM, why: 'Registers files and buffers with a ring.' },
];
