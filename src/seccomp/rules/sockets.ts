/**
 * Socket families. The sandbox's network namespace is empty (egress goes through Ward's broker),
 * so what is left of sockets is mostly kernel attack surface. Denied families:
 * - AF_PACKET: raw link-layer sockets; several privilege escalations (CVE-2016-8655,
 *   CVE-2017-7308, CVE-2020-14386) and nothing to capture in an empty namespace.
 * - AF_KEY: the old IPsec key-management interface; rarely used, buggy.
 * - AF_BLUETOOTH: a large protocol stack reachable without privileges.
 * - AF_ALG: the kernel crypto API exposed to user space; a steady source of bugs, and
 *   user-space crypto libraries do not need it.
 * - AF_VSOCK: a channel to the hypervisor or host; inside a VM it would bypass the network
 *   namespace and the egress policy entirely.
 * Allowed: AF_UNIX, AF_INET, AF_INET6 (the egress path) and AF_NETLINK (glibc's getaddrinfo
 * and iproute use NETLINK_ROUTE; in an empty namespace without capabilities the other netlink
 * protocols can change nothing). The domain is an `int`, so only the low 32 bits count.
 *
 * i386 socketcall: 32-bit programs can also reach every socket call through socketcall(call,
 * args), whose arguments sit in memory the filter cannot read, so the domain check above could
 * be bypassed. It fails with ENOSYS; the direct calls (socket 359, connect 362, ... since Linux
 * 4.3) are filtered like on x86_64. Libraries that use only socketcall (glibc built for kernels
 * before 4.3) get no sockets in 32-bit mode, which is off by default. i386 ipc (SysV IPC
 * multiplexer) is left alone: it does nothing the 64-bit shmget/semop/msgsnd cannot, and the
 * sandbox has its own IPC namespace.
 */
import { DENY_ENOSYS, DENY_EPERM, type SeccompRule } from '../rule.js';

export const AF_KEY = 15;
export const AF_PACKET = 17;
export const AF_BLUETOOTH = 31;
export const AF_ALG = 38;
export const AF_VSOCK = 40;

export const rules: readonly SeccompRule[] = [
  {
    syscall: 'socket',
    action: DENY_EPERM,
    when: { arg: 0, in32: [AF_KEY, AF_PACKET, AF_BLUETOOTH, AF_ALG, AF_VSOCK] },
    why: 'Socket families that are pure attack surface in a sandbox (AF_PACKET, AF_KEY, AF_BLUETOOTH, AF_ALG) or a way out of it (AF_VSOCK).',
  },
  {
    syscall: 'socketcall',
    action: DENY_ENOSYS,
    why: 'i386 only: the socket multiplexer hides its arguments in memory, so the socket family check cannot apply; the direct socket calls remain.',
  },
];
