/**
 * userfaultfd lets a process stop the kernel at a page fault of its choosing, in the middle of
 * a system call, for as long as it likes. That turns narrow race windows in other kernel bugs
 * into reliable exploits; it is the standard tool of modern kernel exploits. Only live-migration
 * style programs (CRIU, QEMU postcopy) need it. (The /dev/userfaultfd route is not reachable:
 * bwrap's --dev does not create that node.)
 */
import { DENY_EPERM, type SeccompRule } from '../rule.js';

export const rules: readonly SeccompRule[] = [
  { syscall: 'userfaultfd', action: DENY_EPERM, why: 'Pauses the kernel at a chosen page fault: makes kernel races reliably exploitable.' },
];
