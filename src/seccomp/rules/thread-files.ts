/**
 * Applied only to a supervised plan (compileSeccomp's `supervised`: the policy has rules, or
 * append-only or visible-only files), so not part of SECCOMP_RULES.
 *
 * When a rule fires, Ward cuts the connections and kills the writers the sandbox already holds
 * (src/supervisor/cut.ts), by reading every thread's fd table. A thread made with CLONE_THREAD
 * but without CLONE_FILES has a table of its own, which a red team used to keep a connection
 * and a write fd past a revocation. cut.ts reads those tables too; refusing the clone as well
 * leaves one way fewer to get it wrong. No thread library makes such threads: glibc, musl, Go
 * and Rust all pass CLONE_FILES with CLONE_THREAD. unshare(CLONE_FILES), the other way to a
 * private table, is refused for every plan (namespaces.ts); clone3 is ENOSYS there too.
 */
import { DENY_EPERM, type SeccompRule } from '../rule.js';

/** include/uapi/linux/sched.h */
export const CLONE_FILES = 0x00000400;
export const CLONE_THREAD = 0x00010000;

export const THREAD_FILES_RULES: readonly SeccompRule[] = [
  {
    syscall: 'clone',
    action: DENY_EPERM,
    when: { arg: 0, masked32: CLONE_THREAD | CLONE_FILES, equals32: CLONE_THREAD },
    why: 'Supervised plans: a thread (CLONE_THREAD) without CLONE_FILES would hold fds in a table of its own, out of the way of the cut of connections and the kill of writers a rule makes when it fires. Threads of every thread library share their table and stay allowed.',
  },
];
