/**
 * ReportInput -> ReportDocument (report.json). Everything the HTML shows is
 * computed here, once, so the page and the JSON cannot disagree: the HTML is
 * rendered from this document and nothing else.
 */
import { keyPaths } from '../audit/keys.js';
import { sha256Hex } from '../policy/canonical.js';
import { WARD_VERSION } from '../version.js';
import { PROMISES } from './mappings.js';
import type { NapkinRow, ProbeResult, ProbeStatus, ReportDocument, ReportInput, ReportSummary } from './types.js';

/** A POSIX shell word: the path as it is, quoted only when it needs to be. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function countProbes(probes: readonly Pick<ProbeResult, 'status'>[]): ReportSummary {
  const s: ReportSummary = { probes: probes.length, held: 0, broken: 0, error: 0, skipped: 0 };
  for (const p of probes) s[p.status]++;
  return s;
}

/** The worst status wins: broken, then error, then held; skipped only when nothing ran. */
export function combine(statuses: readonly ProbeStatus[]): ProbeStatus {
  for (const s of ['broken', 'error', 'held'] as const) if (statuses.includes(s)) return s;
  return 'skipped';
}

/**
 * One row per promise of the napkin, in its order (a promise no probe tests is
 * a row too, marked untested), then any other promise the probes name.
 */
export function napkin(probes: readonly ProbeResult[]): NapkinRow[] {
  const rows = new Map<string, NapkinRow>();
  for (const p of PROMISES) rows.set(p.key, { promise: p.key, text: p.text, says_no: p.says_no, mechanisms: [], status: 'untested', probes: [] });
  for (const p of probes) {
    let row = rows.get(p.promise);
    if (!row) {
      row = { promise: p.promise, text: p.promise, says_no: '', mechanisms: [], status: 'untested', probes: [] };
      rows.set(p.promise, row);
    }
    if (!row.mechanisms.includes(p.mechanism)) row.mechanisms.push(p.mechanism);
    row.probes.push({ id: p.id, status: p.status });
  }
  for (const row of rows.values()) if (row.probes.length) row.status = combine(row.probes.map((p) => p.status));
  return [...rows.values()];
}

export function buildReport(input: ReportInput, now: Date = new Date()): ReportDocument {
  const results = input.probes.probes;
  const summary = countProbes(results);
  const warnings: string[] = [];

  const given = input.probes.summary;
  const mismatched = (['held', 'broken', 'error', 'skipped'] as const).filter((k) => given[k] !== summary[k]);
  if (mismatched.length) {
    warnings.push(
      `the probe run's own summary (${mismatched.map((k) => `${k} ${given[k]}`).join(', ')}) does not match its results (${mismatched.map((k) => `${k} ${summary[k]}`).join(', ')}); this report counts the results`,
    );
  }
  const matches = sha256Hex(input.policy.canonical) === input.policy.sha256;
  if (!matches) warnings.push(`the policy's SHA-256 ${input.policy.sha256} is not the hash of the canonical policy shown (${sha256Hex(input.policy.canonical)})`);
  if (input.probes.policy_sha256 !== input.policy.sha256) {
    warnings.push(`the probes ran under policy ${input.probes.policy_sha256}, not the policy shown here (${input.policy.sha256})`);
  }
  const ids = new Set<string>();
  for (const p of results) {
    if (ids.has(p.id)) warnings.push(`probe id ${p.id} appears more than once`);
    ids.add(p.id);
  }
  if (!input.audit) warnings.push('no audit log is named: the probe run cannot be re-checked against its records');
  else if (!input.audit.head) warnings.push(`the audit log ${input.audit.log} has no chain head in this report`);
  else if (!input.audit.head.signature) warnings.push(`the audit log's chain head (seq ${input.audit.head.seq}) is not signed: run \`ward keys init\` so checkpoints are`);

  const verdict = summary.broken > 0 ? 'broken' : summary.error > 0 ? 'error' : summary.held > 0 ? 'held' : 'empty';
  return {
    format: 'ward-report',
    format_version: 1,
    generated: now.toISOString(),
    ward_version: WARD_VERSION,
    verdict,
    summary,
    policy: { sha256: input.policy.sha256, canonical: input.policy.canonical, sources: [...input.policy.sources], sha256_matches_canonical: matches },
    napkin: napkin(results),
    probes: input.probes,
    doctor: input.doctor ?? null,
    audit: input.audit
      ? {
          log: input.audit.log,
          head: input.audit.head ?? null,
          verify_command: `ward audit verify ${shellQuote(input.audit.log)} --pubkey ${shellQuote(keyPaths().publicKey)}`,
        }
      : null,
    warnings,
  };
}
