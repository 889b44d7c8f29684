/**
 * eBPF. The verifier and the helpers are among the most exploited parts of the kernel, and
 * unprivileged eBPF is off on most distributions anyway (kernel.unprivileged_bpf_disabled).
 * This rule does not touch classic BPF socket filters (setsockopt SO_ATTACH_FILTER, used by
 * tcpdump-like tools and DHCP clients) nor seccomp itself, which a program may still use to
 * restrict itself further.
 */
import { DENY_EPERM, type SeccompRule } from '../rule.js';

export const rules: readonly SeccompRule[] = [
  { syscall: 'bpf', action: DENY_EPERM, why: 'Loads eBPF programs and maps: verifier bugs have repeatedly given root.' },
];
