/**
 * The seccomp ABI a filter talks to: the input (`struct seccomp_data`), the architecture
 * tokens, and the return values. Values from include/uapi/linux/seccomp.h and
 * include/uapi/linux/audit.h; they are part of the kernel's stable ABI.
 */

/** `seccomp_data.arch` for 64-bit x86 (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE). Also
 *  reported for x32 calls, which are told apart only by X32_SYSCALL_BIT in `nr`. */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
/** `seccomp_data.arch` for 32-bit x86 (EM_386 | __AUDIT_ARCH_LE): 32-bit binaries and `int $0x80`. */
export const AUDIT_ARCH_I386 = 0x40000003;
/** x32 syscalls are x86_64 syscalls with this bit set in `nr`. */
export const X32_SYSCALL_BIT = 0x40000000;

/**
 * `struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }`, 64 bytes.
 * A filter can only load aligned 32-bit words from it; 64-bit fields are two words, the low
 * one first on a little-endian machine.
 */
export const SECCOMP_DATA_SIZE = 64;
export const OFFSET_NR = 0;
export const OFFSET_ARCH = 4;
export const OFFSET_IP = 8;
/** Offset of the low 32 bits of argument `i` (0-5); the high 32 bits are at +4. */
export function argOffset(i: number): number {
  return 16 + 8 * i;
}

/** Filter return values: the action in the high 16 bits, its data (e.g. the errno) in the low 16. */
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_KILL_THREAD = 0x00000000;
export const SECCOMP_RET_TRAP = 0x00030000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_USER_NOTIF = 0x7fc00000;
export const SECCOMP_RET_TRACE = 0x7ff00000;
export const SECCOMP_RET_LOG = 0x7ffc0000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const SECCOMP_RET_ACTION_FULL = 0xffff0000;
export const SECCOMP_RET_DATA = 0x0000ffff;

/** The kernel clamps an errno returned through SECCOMP_RET_ERRNO to this. */
export const MAX_ERRNO = 4095;

export const EPERM = 1;
export const ENOSYS = 38;
