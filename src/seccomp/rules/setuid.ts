/**
 * Set-user-ID and set-group-ID bits. When Ward runs as root, uid 0 inside the sandbox's user
 * namespace is the host's root: a file the sandbox creates in the workspace belongs to host
 * root, and `chmod 4755` on a copied shell would leave a setuid-root program on the host for
 * anyone who can reach the workspace (the escape probe priv.plant-setuid-on-host found it).
 * For an unprivileged caller the bits are harmless, but no agent task needs them, so they are
 * refused for every caller: every syscall that takes a mode fails with EPERM when the mode has
 * S_ISUID (04000) or S_ISGID (02000). mode_t is an unsigned int, so only the low 32 bits count.
 *
 * open/openat only use the mode with O_CREAT or O_TMPFILE; the rule checks the mode regardless.
 * glibc and musl pass 0 when they do not create, Node/Rust/Python pass 0666/0777: no normal
 * open carries a set-id bit. openat2 takes its mode inside a struct the filter cannot read, so
 * it gets ENOSYS and callers fall back to openat, which is checked.
 */
import { DENY_ENOSYS, DENY_EPERM, type ArgIndex, type SeccompRule } from '../rule.js';

export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
const SETID = BigInt(S_ISUID | S_ISGID);

/** Where the mode is, per syscall (the same positions on x86_64 and i386). */
const MODE_ARG: readonly (readonly [string, ArgIndex])[] = [
  ['chmod', 1],
  ['fchmod', 1],
  ['fchmodat', 2],
  ['fchmodat2', 2],
  ['creat', 1],
  ['open', 2],
  ['openat', 3],
  ['mknod', 1],
  ['mknodat', 2],
];

export const rules: readonly SeccompRule[] = [
  ...MODE_ARG.map(([syscall, arg]): SeccompRule => ({
    syscall,
    action: DENY_EPERM,
    when: { arg, anyBits: SETID },
    why: `A mode with S_ISUID or S_ISGID (argument ${arg}) would make a set-id program; as a root caller's sandbox that is a setuid-root file on the host.`,
  })),
  {
    syscall: 'openat2',
    action: DENY_ENOSYS,
    why: 'The mode is in struct open_how in memory, which seccomp cannot read; ENOSYS makes callers fall back to openat, whose mode is checked.',
  },
];
