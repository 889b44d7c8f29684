/**
 * Executable anonymous files. A memfd lives on the kernel's internal shmem mount, outside every
 * path Landlock governs, so code written into one and run with execve("/proc/self/fd/N") or
 * fexecve never meets Landlock's execute check: a policy whose writable grants are not
 * executable (W^X) would still run code the command wrote itself. MFD_NOEXEC_SEAL (Linux >= 6.3)
 * makes the memfd non-executable for good (no x bit, and F_SEAL_EXEC so chmod cannot add one),
 * so only such memfds may be made. The sysctl vm.memfd_noexec would do the same without
 * refusing flagless calls, but only the host's root may write it, even in a pid namespace of
 * its own, so it cannot be the layer for an unprivileged caller.
 *
 * ENOSYS ("no memfd_create on this kernel"): the answer programs already handle by falling
 * back to a temporary file (which lands on a path Landlock does govern). Node, Python, git and
 * gcc do not call memfd_create at all. On kernels before 6.3 the kernel refuses the flag itself
 * (EINVAL), so memfds cannot be made there at all.
 */
import { DENY_ENOSYS, type SeccompRule } from '../rule.js';

/** include/uapi/linux/memfd.h */
export const MFD_NOEXEC_SEAL = 0x0008;

export const rules: readonly SeccompRule[] = [
  {
    syscall: 'memfd_create',
    action: DENY_ENOSYS,
    when: { arg: 1, noneOf32: MFD_NOEXEC_SEAL },
    why: 'A memfd without MFD_NOEXEC_SEAL can be executed through /proc/self/fd/N, where Landlock never looks: code written by the command would run under a W^X policy. ENOSYS makes programs fall back to a temporary file.',
  },
];
