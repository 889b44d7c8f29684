/**
 * Terminal injection. When the sandboxed command shares the user's terminal, TIOCSTI pushes
 * bytes into the terminal's input queue as if the user had typed them: the command can leave
 * `rm -rf ~\n` for the user's shell to run after it exits (CVE-2017-5226, in bubblewrap itself).
 * TIOCLINUX does the same on a Linux virtual console (paste selection) and more. bwrap's
 * --new-session also defeats TIOCSTI; this is the second lock.
 *
 * The kernel declares the request as `unsigned int cmd` and ignores the high 32 bits of the
 * register, so the filter compares only the low 32 bits: comparing all 64 would let
 * 0x1_0000_5412 through while the kernel runs it as TIOCSTI.
 */
import { DENY_EPERM, type SeccompRule } from '../rule.js';

export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;

export const rules: readonly SeccompRule[] = [
  {
    syscall: 'ioctl',
    action: DENY_EPERM,
    when: { arg: 1, in32: [TIOCSTI, TIOCLINUX] },
    why: 'TIOCSTI / TIOCLINUX inject input into a terminal the user will type into next.',
  },
];
