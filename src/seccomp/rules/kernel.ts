/**
 * Administering the machine itself: the kernel, its modules, the clock, swap, accounting, the
 * kernel log, raw hardware ports. A sandboxed command has no business with any of these. Most
 * also need a capability the sandbox does not have; the filter refuses them before any
 * permission check runs, which also keeps the code behind them out of reach.
 */
import { DENY_EPERM, type SeccompRule } from '../rule.js';

export const rules: readonly SeccompRule[] = [
  // Replacing or extending the running kernel.
  { syscall: 'kexec_load', action: DENY_EPERM, why: 'Loads a new kernel to boot into.' },
  { syscall: 'kexec_file_load', action: DENY_EPERM, why: 'Loads a new kernel to boot into (x86_64 only).' },
  { syscall: 'init_module', action: DENY_EPERM, why: 'Loads code into the kernel.' },
  { syscall: 'finit_module', action: DENY_EPERM, why: 'Loads code into the kernel from a file.' },
  { syscall: 'delete_module', action: DENY_EPERM, why: 'Unloads kernel modules.' },
  { syscall: 'reboot', action: DENY_EPERM, why: 'Reboots or halts the machine (or, in a pid namespace, kills it).' },
  // Machine-wide state.
  { syscall: 'swapon', action: DENY_EPERM, why: 'Changes the machine\'s swap.' },
  { syscall: 'swapoff', action: DENY_EPERM, why: 'Changes the machine\'s swap.' },
  { syscall: 'acct', action: DENY_EPERM, why: 'Turns process accounting on or off, for the whole machine.' },
  { syscall: 'syslog', action: DENY_EPERM, why: 'Reads or clears the kernel log, which holds kernel addresses and other users\' activity.' },
  { syscall: 'quotactl', action: DENY_EPERM, why: 'Changes disk quotas, which the filesystem shares with the host\'s users.' },
  { syscall: 'quotactl_fd', action: DENY_EPERM, why: 'Changes disk quotas (the fd form of quotactl).' },
  { syscall: 'lookup_dcookie', action: DENY_EPERM, why: 'Obsolete oprofile interface (removed in Linux 6.4) that turned cookies into paths.' },
  { syscall: 'nfsservctl', action: DENY_EPERM, why: 'Obsolete kernel NFS server control (removed in Linux 3.1).' },
  // Raw hardware and legacy execution modes.
  { syscall: 'iopl', action: DENY_EPERM, why: 'Raises the I/O privilege level: direct access to every hardware port.' },
  { syscall: 'ioperm', action: DENY_EPERM, why: 'Grants direct access to hardware I/O ports.' },
  { syscall: 'uselib', action: DENY_EPERM, why: 'Obsolete a.out shared-library loader with a history of bugs.' },
  { syscall: 'vm86', action: DENY_EPERM, why: 'i386 only: runs code in virtual-8086 mode, legacy code with a history of bugs.' },
  { syscall: 'vm86old', action: DENY_EPERM, why: 'i386 only: the older virtual-8086 entry point.' },
  // The clock is shared by the whole machine (time namespaces only offset the monotonic clocks).
  { syscall: 'settimeofday', action: DENY_EPERM, why: 'Sets the machine\'s wall clock (breaks TLS, logs, Kerberos).' },
  { syscall: 'clock_settime', action: DENY_EPERM, why: 'Sets a machine-wide clock.' },
  { syscall: 'clock_settime64', action: DENY_EPERM, why: 'i386 only: clock_settime with a 64-bit time.' },
  { syscall: 'clock_adjtime', action: DENY_EPERM, why: 'Adjusts a machine-wide clock (with a zero mode it only reads; denied anyway, rarely used).' },
  { syscall: 'clock_adjtime64', action: DENY_EPERM, why: 'i386 only: clock_adjtime with a 64-bit time.' },
  { syscall: 'adjtimex', action: DENY_EPERM, why: 'Adjusts the machine\'s clock.' },
  // Opening files by handle bypasses the mount layout.
  { syscall: 'name_to_handle_at', action: DENY_EPERM, why: 'Produces file handles; half of the "shocker" container escape.' },
  { syscall: 'open_by_handle_at', action: DENY_EPERM, why: 'Opens a file by handle, without a path: ignores the sandbox\'s mount layout (the "shocker" escape).' },
];
