/**
 * The posture score, on SecureClaw's scale so the two read alike: start at 100,
 * subtract 15 per critical, 8 per high, 3 per medium and 1 per low finding. A
 * failed check costs its full penalty; a warning costs half of it (rounded up):
 * a warning is a weaker or partial version of the same gap. Never below 0.
 */
import type { CheckResult, Severity } from './types.js';

export const PENALTY: Record<Severity, number> = { critical: 15, high: 8, medium: 3, low: 1, info: 0 };

export function penalty(c: Pick<CheckResult, 'status' | 'severity'>): number {
  if (c.status === 'fail') return PENALTY[c.severity];
  if (c.status === 'warn') return Math.ceil(PENALTY[c.severity] / 2);
  return 0;
}

export function score(checks: readonly Pick<CheckResult, 'status' | 'severity'>[]): number {
  return Math.max(0, 100 - checks.reduce((sum, c) => sum + penalty(c), 0));
}

/** A critical or high check that failed: the doctor exits 1. */
export function isBlocking(c: Pick<CheckResult, 'status' | 'severity'>): boolean {
  return c.status === 'fail' && (c.severity === 'critical' || c.severity === 'high');
}
