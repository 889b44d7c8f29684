/**
 * The auditor report's input and its machine-readable form (report.json).
 * ProbeReport is what `ward probe` produces; src/probes/types.ts owns it.
 */
import type { DoctorReport } from '../doctor/types.js';
import type { ProbeReport, ProbeResult, ProbeStatus } from '../probes/types.js';

export type { ProbeReport, ProbeResult, ProbeStatus };

export interface AuditHead {
  seq: number;
  hash: string;
  signature?: string;
  key_id?: string;
}

export interface ReportInput {
  probes: ProbeReport;
  doctor?: DoctorReport;
  /** The effective policy the probes ran under: canonical JSON, its SHA-256, the sources merged. */
  policy: { sha256: string; canonical: string; sources: string[] };
  /** The audit log the run wrote, and its chain head at the end of the run. */
  audit?: { log: string; head?: AuditHead };
}

/** One row of the napkin: a promise, what says no, and the probes that show it. */
export interface NapkinRow {
  /** The promise's key (ProbePromise: filesystem, syscalls, ...). */
  promise: string;
  /** The promise in words, as README's napkin states it. */
  text: string;
  /** What says no, in words (README's napkin). */
  says_no: string;
  /** The mechanisms the probes of this row name (keys: mount-namespace, seccomp, ...). */
  mechanisms: string[];
  /** The worst status of its probes; `untested` when no probe tests this promise. */
  status: ProbeStatus | 'untested';
  probes: { id: string; status: ProbeStatus }[];
}

export interface ReportSummary {
  probes: number;
  held: number;
  broken: number;
  error: number;
  skipped: number;
}

/** report.json: everything in the HTML, and the inputs it was made from. */
export interface ReportDocument {
  format: 'ward-report';
  format_version: 1;
  generated: string;
  ward_version: string;
  /** broken: a promise failed; error: a probe could not run; held: every probe that ran held; empty: none ran. */
  verdict: 'held' | 'broken' | 'error' | 'empty';
  /** Counted from the probe results (the numbers the HTML shows). */
  summary: ReportSummary;
  policy: { sha256: string; canonical: string; sources: string[]; sha256_matches_canonical: boolean };
  napkin: NapkinRow[];
  probes: ProbeReport;
  doctor: DoctorReport | null;
  audit: { log: string; head: AuditHead | null; verify_command: string } | null;
  /** Inconsistencies between the inputs (a report never hides them). */
  warnings: string[];
}
