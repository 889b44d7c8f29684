/**
 * The posture doctor's data: a check is plain data (id, title, severity) plus a
 * function that looks at the host and returns what it saw. A result is the
 * check's data with the outcome filled in, ready for a terminal, JSON or the
 * auditor report.
 */
import type { WardError } from '../errors.js';
import type { LoadedPolicy } from '../policy/load.js';

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info';
export type CheckStatus = 'pass' | 'fail' | 'warn' | 'info';

export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low', 'info'];

/** What one check found. */
export interface CheckResult {
  /** Stable, dotted: `host.bwrap`, `keys.audit-key`, `policy.world-writable`. */
  id: string;
  title: string;
  /** How bad a failure of this check is (an outcome may raise or lower it, e.g. log writable by others). */
  severity: Severity;
  status: CheckStatus;
  /** What was observed, in one or a few lines. Never a secret's value. */
  evidence: string;
  /** What to do about it (for fail and warn). */
  fix?: string;
  /** The promise or layer that is missing while this check does not pass. */
  degrades?: string;
}

/** What a check's function returns: the outcome, optionally overriding the check's severity. */
export interface Outcome {
  status: CheckStatus;
  evidence: string;
  fix?: string;
  degrades?: string;
  severity?: Severity;
}

/** Everything a check may look at. Checks read the host themselves; this holds what they share. */
export interface DoctorContext {
  env: NodeJS.ProcessEnv;
  uid: number;
  home: string;
  /** The policy whose grants are checked (the default policy unless one was given). */
  policy: LoadedPolicy;
  /** The bwrap path, or null when none was found (later checks that need it say so). */
  bwrap: string | null;
  /** Why there is no bwrap: missing, or refused as a program others (or a sandbox) could have changed. */
  bwrapRefusal: WardError | null;
}

export interface Check {
  id: string;
  title: string;
  severity: Severity;
  run(ctx: DoctorContext): Outcome | Promise<Outcome>;
}

export interface DoctorReport {
  ward_version: string;
  generated: string;
  host: { kernel: string; arch: string; uid: number; user: string };
  policy: { sha256: string; sources: string[] };
  checks: CheckResult[];
  /** 100 minus the penalties of failed and warned checks, never below 0. */
  score: number;
  /** The layers or promises that are missing on this host, one per line, deduplicated. */
  degrades: string[];
  summary: { pass: number; fail: number; warn: number; info: number };
  /** 0 when no critical or high check failed, 1 otherwise (the CLI's exit code). */
  exit_code: 0 | 1;
}
