/**
 * The doctor's report for a terminal: one line per check (✓ pass, ✗ fail,
 * ! warning, i information), then the evidence and fix of every check that did
 * not pass, the score, and what would degrade.
 */
import type { CheckResult, CheckStatus, DoctorReport } from './types.js';

export const ICON: Record<CheckStatus, string> = { pass: '✓', fail: '✗', warn: '!', info: 'i' };

function indent(text: string, pad: string): string {
  return text
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

function line(c: CheckResult, width: number): string {
  const head = `${ICON[c.status]} ${c.id.padEnd(width)}`;
  if (c.status === 'pass') return `${head}  ${c.evidence.split('\n')[0]}`;
  if (c.status === 'info') return [`${head}  ${c.evidence}`, ...(c.fix ? [indent(`note: ${c.fix}`, '      ')] : [])].join('\n');
  const sev = c.severity === 'info' ? '' : ` [${c.severity}]`;
  const out = [`${head}  ${c.title}${sev}`, indent(c.evidence, '      ')];
  if (c.fix) out.push(indent(`fix: ${c.fix}`, '      '));
  return out.join('\n');
}

export function renderDoctor(r: DoctorReport): string {
  const width = Math.max(...r.checks.map((c) => c.id.length));
  const out: string[] = [];
  out.push(`ward doctor · Linux ${r.host.kernel} ${r.host.arch} · uid ${r.host.uid} (${r.host.user}) · policy ${r.policy.sources.join(' + ')} (sha256 ${r.policy.sha256.slice(0, 12)}…)`);
  out.push('');
  for (const c of r.checks) out.push(line(c, width));
  out.push('');
  const s = r.summary;
  out.push(`score ${r.score}/100 · ${s.pass} passed, ${s.fail} failed, ${s.warn} warning${s.warn === 1 ? '' : 's'}, ${s.info} for information`);
  if (r.degrades.length) {
    out.push('what would degrade:');
    for (const d of r.degrades) out.push(`  - ${d}`);
  } else {
    out.push('what would degrade: nothing; every layer is available');
  }
  if (r.exit_code !== 0) {
    const blocking = r.checks.filter((c) => c.status === 'fail' && (c.severity === 'critical' || c.severity === 'high')).map((c) => c.id);
    out.push(`exit 1: ${blocking.join(', ')} failed (critical or high)`);
  }
  return `${out.join('\n')}\n`;
}
