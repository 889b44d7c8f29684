/**
 * Terminals. When the sandboxed command shares the user's terminal (its controlling terminal is
 * passed as fds 0-2: src/sandbox/stdio.ts), the terminal outlives the command, so nothing the
 * command does to it may outlive the run:
 * - TIOCSTI pushes bytes into the terminal's input queue as if the user had typed them: the
 *   command can leave `rm -rf ~\n` for the user's shell to run after it exits (CVE-2017-5226,
 *   in bubblewrap itself). TIOCLINUX does the same on a Linux virtual console (paste selection)
 *   and more. bwrap's --new-session also defeats TIOCSTI; this is the second lock.
 * - TIOCSETD changes the line discipline: N_NULL (27) left the user's terminal dead (all I/O
 *   fails) and Node's own terminal restore at Ward's exit aborted. It is also how the n_gsm
 *   and other line-discipline kernel bugs are reached from a pty (CVE-2023-6546). Nothing a
 *   sandboxed program does needs it (slattach, pppd, hciattach do, on real devices).
 * - TIOCEXCL makes the terminal exclusive: every later open of it is EBUSY without
 *   CAP_SYS_ADMIN, so the user's sudo, ssh and gpg prompts (which open /dev/tty) failed after the
 *   run. TIOCNXCL only undoes it and stays allowed.
 * - TCXONC with TCOOFF stops the terminal's output: the user's shell, and Ward's own last
 *   words, then hang on their next write until ^Q (or forever, without IXON). tcflow() is for
 *   serial lines; nothing a sandboxed program does on a terminal needs it.
 * - TIOCCONS (redirect console output) and TIOCVHANGUP (hang up the terminal) need
 *   CAP_SYS_ADMIN in the initial namespace, which no sandbox has; refused here too so that no
 *   capability slip makes them work.
 * Allowed, on purpose (SECURITY-MODEL.md, gaps): TIOCSWINSZ (tmux and node-pty resize their own
 * ptys with it, and tmux exits when it fails; seccomp cannot tell their pty from the user's
 * terminal), TIOCSCTTY (login_tty, pty.fork: the kernel refuses to take a terminal that is
 * another session's controlling terminal) and TIOCSPGRP (job-control shells on their own ptys;
 * the kernel refuses it on a terminal of another session).
 *
 * The kernel declares the request as `unsigned int cmd` and ignores the high 32 bits of the
 * register, so the filter compares only the low 32 bits: comparing all 64 would let
 * 0x1_0000_5412 through while the kernel runs it as TIOCSTI.
 */
import { DENY_EPERM, type SeccompRule } from '../rule.js';

export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;
export const TIOCSETD = 0x5423;
export const TIOCEXCL = 0x540c;
export const TIOCCONS = 0x541d;
export const TIOCVHANGUP = 0x5437;
export const TCXONC = 0x540a;

export const rules: readonly SeccompRule[] = [
  {
    syscall: 'ioctl',
    action: DENY_EPERM,
    when: { arg: 1, in32: [TIOCSTI, TIOCLINUX] },
    why: 'TIOCSTI / TIOCLINUX inject input into a terminal the user will type into next.',
  },
  {
    syscall: 'ioctl',
    action: DENY_EPERM,
    when: { arg: 1, in32: [TIOCSETD, TIOCEXCL, TCXONC, TIOCCONS, TIOCVHANGUP] },
    why: "TIOCSETD / TIOCEXCL / TCXONC / TIOCCONS / TIOCVHANGUP leave the user's terminal dead, unopenable, stopped or redirected after the run.",
  },
];
