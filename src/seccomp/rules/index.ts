/**
 * Every built-in rule, family by family. The order is the order the compiler checks rules
 * for the same syscall (first match wins), and the order `ward explain` lists them in.
 * To find what happens to a syscall, open the file named after its family.
 */
import type { SeccompRule } from '../rule.js';
import { rules as bpf } from './bpf.js';
import { rules as ioUring } from './io-uring.js';
import { rules as kernel } from './kernel.js';
import { rules as keys } from './keys.js';
import { rules as memfd } from './memfd.js';
import { rules as mount } from './mount.js';
import { rules as namespaces } from './namespaces.js';
import { rules as perf } from './perf.js';
import { rules as personality } from './personality.js';
import { rules as ptrace } from './ptrace.js';
import { rules as setuid } from './setuid.js';
import { rules as sockets } from './sockets.js';
import { rules as tty } from './tty.js';
import { rules as userfaultfd } from './userfaultfd.js';

export const RULE_FAMILIES: Readonly<Record<string, readonly SeccompRule[]>> = Object.freeze({
  namespaces,
  mount,
  ptrace,
  'io-uring': ioUring,
  bpf,
  perf,
  keys,
  userfaultfd,
  kernel,
  tty,
  personality,
  sockets,
  setuid,
  memfd,
});

export const SECCOMP_RULES: readonly SeccompRule[] = Object.freeze(Object.values(RULE_FAMILIES).flat());
