/**
 * The auditor report: `ward probe --report DIR` writes
 *
 *   DIR/report.json   everything, machine-readable (ReportDocument)
 *   DIR/report.html   the same, for people: self-contained, offline, printable
 *
 * tying together the effective policy and its hash, the napkin (promise, what
 * says no, the probes that show it), every probe's result with its OWASP ASI and
 * NIST mappings, the doctor's findings, and the audit log's chain head with the
 * command that re-checks it. The HTML is rendered from the JSON document, so the
 * two always carry the same numbers.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildReport } from './build.js';
import { renderHtml } from './render.js';
import type { ReportInput } from './types.js';

export type { AuditHead, NapkinRow, ProbeReport, ProbeResult, ProbeStatus, ReportDocument, ReportInput, ReportSummary } from './types.js';
export { buildReport, countProbes, napkin, shellQuote } from './build.js';
export { renderHtml, DETAIL_LIMIT } from './render.js';
export { escapeHtml } from './html.js';

/** Written under a temporary name and renamed: a reader never sees half a report. */
function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o644 });
  renameSync(tmp, file);
}

export async function writeReport(dir: string, input: ReportInput): Promise<{ json: string; html: string }> {
  const out = path.resolve(dir);
  mkdirSync(out, { recursive: true });
  const doc = buildReport(input);
  const json = path.join(out, 'report.json');
  const html = path.join(out, 'report.html');
  writeAtomic(json, `${JSON.stringify(doc, null, 2)}\n`);
  writeAtomic(html, renderHtml(doc));
  return { json, html };
}
