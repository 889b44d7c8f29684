/**
 * Performance counters. perf_event_open exposes hardware counters and kernel tracepoints: a
 * large, bug-prone interface and a source of side channels and kernel address leaks. Costs:
 * `perf` does not work inside the sandbox.
 */
import { DENY_EPERM, type SeccompRule } from '../rule.js';

export const rules: readonly SeccompRule[] = [
  { syscall: 'perf_event_open', action: DENY_EPERM, why: 'Hardware counters and tracepoints: attack surface, side channels, kernel pointer leaks.' },
];
