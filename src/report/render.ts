/**
 * ReportDocument -> one self-contained HTML page: no scripts, no external
 * resources (a Content-Security-Policy forbids both), inline CSS with a print
 * stylesheet. Every number a reader relies on carries a data-* attribute, so a
 * test (or an auditor's script) can read it back and compare with report.json.
 */
import type { CheckResult, DoctorReport } from '../doctor/types.js';
import { h, trusted, type Fragment, type Html } from './html.js';
import { ASI_NAMES, MECHANISM_NAMES, nistName } from './mappings.js';
import type { Denial } from '../sandbox/launch.js';
import type { NapkinRow, ProbeResult, ProbeStatus, ReportDocument } from './types.js';

/** Longest probe detail shown in the page; report.json always has all of it. */
export const DETAIL_LIMIT = 6000;

const STATUS_LABEL: Record<ProbeStatus | 'untested', string> = { held: '✓ held', broken: '✗ BROKEN', error: '! error', skipped: '– skipped', untested: '○ no probe' };
const CHECK_LABEL: Record<CheckResult['status'], string> = { pass: '✓ pass', fail: '✗ fail', warn: '! warn', info: 'i info' };

const VERDICT: Record<ReportDocument['verdict'], string> = {
  held: 'The boundary held',
  broken: 'A promise was BROKEN',
  error: 'Some probes could not run',
  empty: 'No probe ran',
};

function verdictLine(d: ReportDocument): string {
  const s = d.summary;
  const ran = s.held + s.broken + s.error;
  switch (d.verdict) {
    case 'held':
      return `Every one of the ${ran} probes that ran was refused the way the policy promises (or, for legitimate work, succeeded)${s.skipped ? `; ${s.skipped} skipped` : ''}.`;
    case 'broken':
      return `${s.broken} of ${ran} probes got through: ${s.broken === 1 ? 'the promise it tests does' : 'the promises they test do'} not hold under this policy on this host. See the rows marked BROKEN.`;
    case 'error':
      return `${s.error} of ${ran} probes could not run, so their promises are not shown to hold. None got through.`;
    case 'empty':
      return 'Every probe was skipped: this report shows nothing about the boundary.';
  }
}

function badge(status: ProbeStatus | 'untested'): Html {
  return h`<span class="badge s-${status}">${STATUS_LABEL[status]}</span>`;
}

function when(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

function card(key: string, value: number | string, label: string, cls: string): Html {
  return h`<div class="card ${cls}"><span class="num" id="count-${key}" data-summary="${key}">${value}</span><span class="label">${label}</span></div>`;
}

const mech = (m: string) => MECHANISM_NAMES[m] ?? m;

function napkinTable(rows: NapkinRow[]): Html {
  return h`<table class="napkin">
<thead><tr><th>promise</th><th>what says no</th><th>evidence: the probes that test it</th><th>status</th></tr></thead>
<tbody>${rows.map(
    (r) => h`<tr data-promise="${r.promise}" data-status="${r.status}">
<td class="promise">${r.text}</td>
<td>${r.says_no}${r.mechanisms.length ? h`<div class="mechs">${r.mechanisms.map((m) => h`<span class="code" title="${m}">${mech(m)}</span> `)}</div>` : ''}</td>
<td class="refs">${r.probes.length ? r.probes.map((p) => h`<a class="ref s-${p.status}" href="#probe-${p.id}" title="${p.status}">${p.id}</a> `) : h`<span class="muted">no probe tests this promise yet</span>`}</td>
<td>${badge(r.status)}</td>
</tr>`,
  )}</tbody></table>`;
}

function denialLine(d: unknown): string {
  if (d && typeof d === 'object' && 'layer' in d) {
    const x = d as Partial<Denial>;
    return `[${x.layer}] ${x.what ?? ''} ${x.verdict ?? ''}${x.detail ? `: ${x.detail}` : ''}`;
  }
  return typeof d === 'string' ? d : JSON.stringify(d);
}

function denialsText(d: unknown): string | null {
  if (!Array.isArray(d) || d.length === 0) return null;
  return `Ward observed ${d.length} denial${d.length === 1 ? '' : 's'}:\n${d.map(denialLine).join('\n')}`;
}

function detailBlock(p: ProbeResult): Html {
  const full = p.detail ?? '';
  const shown = full.length > DETAIL_LIMIT ? `${full.slice(0, DETAIL_LIMIT)}\n… (${full.length - DETAIL_LIMIT} more characters in report.json)` : full;
  const denials = denialsText(p.denials);
  const facts = [`exit ${p.exit_code === null ? '–' : p.exit_code}`, p.reason && p.reason !== 'exit' ? `ended by ${p.reason}` : '', `${Math.round(p.duration_ms)} ms`, p.policy_sha256 ? `policy ${p.policy_sha256.slice(0, 12)}…` : ''].filter(Boolean).join(' · ');
  return h`<pre class="detail">${shown}</pre>${p.degraded.length ? h`<div class="small t-error"><b>degraded:</b> ${p.degraded.join('; ')}</div>` : ''}<div class="small muted">${facts}</div>${denials ? h`<pre class="detail denials">${denials.slice(0, DETAIL_LIMIT)}</pre>` : ''}`;
}

function codes(list: string[], name: (c: string) => string | undefined): Html {
  return h`${list.map((c) => h`<span class="code" title="${name(c) ?? c}">${c}</span> `)}`;
}

function probeTables(probes: ProbeResult[]): Html {
  const groups = new Map<string, ProbeResult[]>();
  for (const p of probes) groups.set(p.group, [...(groups.get(p.group) ?? []), p]);
  return h`${[...groups].map(([group, list]) => {
    const c = { held: 0, broken: 0, error: 0, skipped: 0 };
    for (const p of list) c[p.status]++;
    return h`<section class="group" data-group="${group}">
<h3>${group} <span class="muted small">${list.length} probe${list.length === 1 ? '' : 's'}: ${c.held} held${c.broken ? h`, <b class="t-broken">${c.broken} broken</b>` : ''}${c.error ? `, ${c.error} error` : ''}${c.skipped ? `, ${c.skipped} skipped` : ''}</span></h3>
<table class="probes">
<thead><tr><th class="c-status">status</th><th class="c-probe">probe · what it tries · what says no</th><th class="c-map">ASI · NIST</th><th>detail</th></tr></thead>
<tbody>${list.map(
      (p) => h`<tr id="probe-${p.id}" class="probe s-row-${p.status}" data-probe-id="${p.id}" data-status="${p.status}">
<td>${badge(p.status)}</td>
<td><div class="pid">${p.id}</div><div>${p.title}</div><div class="muted small">${p.expect === 'works' ? 'must work' : 'must be refused'} · ${mech(p.mechanism)}</div></td>
<td class="map">${codes(p.asi, (c) => ASI_NAMES[c])}<br>${codes(p.nist, nistName)}</td>
<td>${detailBlock(p)}</td>
</tr>`,
    )}</tbody></table></section>`;
  })}`;
}

function doctorSection(d: DoctorReport | null): Html {
  if (!d) {
    return h`<p class="muted" id="doctor-absent">ward doctor was not run for this report. Run <code>ward doctor</code> on the same host to check its posture.</p>`;
  }
  return h`<div class="doctor-head">
<div class="card score"><span class="num" id="doctor-score" data-doctor-score="${d.score}">${d.score}</span><span class="label">posture score / 100</span></div>
<p>Checked ${when(d.generated)} on Linux ${d.host.kernel} (${d.host.arch}) as uid ${d.host.uid} (${d.host.user}), for policy <code>${d.policy.sha256.slice(0, 16)}…</code>.
${d.summary.pass} passed, <span data-doctor="fail">${d.summary.fail}</span> failed, ${d.summary.warn} warning${d.summary.warn === 1 ? '' : 's'}, ${d.summary.info} for information.
Score: 100 minus 15 / 8 / 3 / 1 per critical / high / medium / low failure (half for a warning).</p>
</div>
${d.degrades.length ? h`<div class="box warn"><b>What would degrade on this host</b><ul>${d.degrades.map((x) => h`<li>${x}</li>`)}</ul></div>` : h`<p>Nothing would degrade: every layer is available on this host.</p>`}
<table class="checks">
<thead><tr><th class="c-status">status</th><th>check</th><th>severity</th><th>evidence and fix</th></tr></thead>
<tbody>${d.checks.map(
    (c) => h`<tr class="check row-${c.status}" data-check-id="${c.id}" data-status="${c.status}" data-severity="${c.severity}">
<td><span class="badge c-${c.status}">${CHECK_LABEL[c.status]}</span></td>
<td><div class="pid">${c.id}</div><div class="small">${c.title}</div></td>
<td class="sev-${c.severity}">${c.severity}</td>
<td><pre class="detail">${c.evidence}</pre>${c.fix ? h`<div class="small"><b>fix:</b> ${c.fix}</div>` : ''}${c.degrades ? h`<div class="small muted"><b>missing:</b> ${c.degrades}</div>` : ''}</td>
</tr>`,
  )}</tbody></table>`;
}

function auditSection(a: ReportDocument['audit']): Html {
  if (!a) return h`<p class="box bad" id="audit-absent">No audit log is named in this report, so its results cannot be re-checked against Ward's records.</p>`;
  const head = a.head;
  return h`<dl class="kv">
<dt>log</dt><dd><code id="audit-log" data-audit-log="${a.log}">${a.log}</code></dd>
<dt>chain head</dt><dd>${head ? h`record <b id="audit-seq" data-audit-seq="${head.seq}">${head.seq}</b>, hash <code class="hash" id="audit-hash">${head.hash}</code>` : h`<span class="t-error">not given</span>`}</dd>
<dt>signature</dt><dd>${head?.signature ? h`<code class="hash" id="audit-signature">${head.signature}</code>` : h`<span class="t-error">unsigned</span>`}</dd>
<dt>key id</dt><dd>${head?.key_id ? h`<code>${head.key_id}</code>` : '–'}</dd>
</dl>
<p>To re-check it, on any machine with Ward and the public half of the signing key${head?.key_id ? h` (key id <code>${head.key_id}</code>)` : ''}:</p>
<pre class="cmd" id="audit-verify">${a.verify_command}</pre>
<p class="small muted">It checks every record's hash chain and every signed checkpoint, exits 0 only when the log is intact, and names the first record that is not. The chain head above must match the last checkpoint it reports.</p>`;
}

/**
 * JSON for reading: indented, but any object or array that fits on one line
 * (a path entry, a short list) stays on one line, so a policy of fifty paths is
 * a page, not five.
 */
export function readableJson(value: unknown, indent = '', width = 100): string {
  const flat = JSON.stringify(value);
  if (value === null || typeof value !== 'object' || flat.length + indent.length <= width) return flat;
  const inner = `${indent}  `;
  if (Array.isArray(value)) return `[\n${value.map((v) => inner + readableJson(v, inner, width)).join(',\n')}\n${indent}]`;
  const entries = Object.entries(value as Record<string, unknown>);
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${readableJson(v, inner, width)}`).join(',\n')}\n${indent}}`;
}

function prettyPolicy(canonical: string): string {
  try {
    return readableJson(JSON.parse(canonical));
  } catch {
    return canonical;
  }
}

const byCode = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

function legend(probes: ProbeResult[]): Html {
  const asi = [...new Set(probes.flatMap((p) => p.asi))].sort(byCode);
  const nist = [...new Set(probes.flatMap((p) => p.nist))].sort(byCode);
  const count = (pred: (p: ProbeResult) => boolean) => probes.filter(pred).length;
  return h`<div class="legend">
<table><thead><tr><th>OWASP ASI</th><th>name</th><th>probes</th></tr></thead><tbody>${asi.map((c) => h`<tr><td class="pid">${c}</td><td>${ASI_NAMES[c] ?? ''}</td><td>${count((p) => p.asi.includes(c))}</td></tr>`)}</tbody></table>
<table><thead><tr><th>NIST SP 800-53</th><th>name</th><th>probes</th></tr></thead><tbody>${nist.map((c) => h`<tr><td class="pid">${c}</td><td>${nistName(c) ?? ''}</td><td>${count((p) => p.nist.includes(c))}</td></tr>`)}</tbody></table>
</div>`;
}

export function renderHtml(d: ReportDocument): string {
  const s = d.summary;
  const p = d.probes;
  const sections: [string, string, Fragment][] = [
    ['napkin', 'The napkin: each promise, what says no, and the probes that show it', napkinTable(d.napkin)],
    ['probes', 'Every probe', probeTables(p.probes)],
    ['doctor', 'Host posture (ward doctor)', doctorSection(d.doctor)],
    ['audit', 'Audit log', auditSection(d.audit)],
    [
      'policy',
      'Effective policy',
      h`<dl class="kv"><dt>SHA-256</dt><dd><code class="hash" id="policy-sha256" data-policy-sha256="${d.policy.sha256}">${d.policy.sha256}</code> ${d.policy.sha256_matches_canonical ? h`<span class="t-held">✓ matches the text below</span>` : h`<span class="t-broken">✗ does not match the text below</span>`}</dd>
<dt>sources</dt><dd>${d.policy.sources.join(' → ')}</dd></dl>
<p class="small muted">Re-check the hash from report.json: <code>jq -j .policy.canonical report.json | sha256sum</code></p>
<pre class="policy">${prettyPolicy(d.policy.canonical)}</pre>`,
    ],
    ['legend', 'Framework mappings used by these probes', legend(p.probes)],
  ];
  const page = h`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ward ${d.ward_version}">
<title>Ward auditor report · ${VERDICT[d.verdict]} · ${when(d.generated)}</title>
<style>${trusted(CSS)}</style>
</head>
<body data-verdict="${d.verdict}">
<header class="v-${d.verdict}">
<div class="brand">Ward · auditor report</div>
<h1 id="verdict" data-verdict="${d.verdict}">${VERDICT[d.verdict]}</h1>
<p class="lede">${verdictLine(d)}</p>
<dl class="meta">
<dt>generated</dt><dd>${when(d.generated)}</dd>
<dt>ward</dt><dd>${d.ward_version}${p.ward_version !== d.ward_version ? ` (probes run by ${p.ward_version})` : ''}</dd>
<dt>host</dt><dd>Linux ${p.host.kernel} (${p.host.arch}), uid ${p.host.uid}, Landlock ABI ${p.host.landlock_abi ?? 'unknown'}, cgroup ${p.host.cgroup}${p.allow_degraded ? h` · <b class="t-error">degraded runs allowed</b>` : ''}</dd>
<dt>probe run</dt><dd>${when(p.started)} → ${when(p.finished)}</dd>
<dt>policy</dt><dd><code>${d.policy.sha256}</code></dd>
</dl>
</header>
<main>
<section class="cards" aria-label="summary">
${card('held', s.held, 'held', 'held')}
${card('broken', s.broken, 'broken', s.broken ? 'broken' : 'zero')}
${card('error', s.error, 'error', s.error ? 'error' : 'zero')}
${card('skipped', s.skipped, 'skipped', 'skipped')}
${card('probes', s.probes, 'probes in all', 'total')}
${d.doctor ? card('doctor-score', d.doctor.score, 'host posture / 100', 'total') : ''}
</section>
${d.warnings.length ? h`<section class="box bad" id="warnings"><b>This report found inconsistencies in its inputs</b><ul>${d.warnings.map((w) => h`<li>${w}</li>`)}</ul></section>` : ''}
<nav class="toc"><ol>${sections.map(([id, title]) => h`<li><a href="#${id}">${title}</a></li>`)}</ol></nav>
${sections.map(([id, title, body], i) => h`<section id="${id}" class="part"><h2>${i + 1}. ${title}</h2>${body}</section>`)}
</main>
<footer>Written by <code>ward probe --report</code>. Machine-readable twin: <code>report.json</code> (same numbers, full probe output). This page loads nothing and runs nothing.</footer>
</body>
</html>
`;
  return page.value;
}

const CSS = `
:root { --fg:#1d232b; --muted:#5b6673; --line:#d9dee4; --bg:#ffffff; --soft:#f4f6f8;
  --held:#17663a; --held-bg:#e3f4e9; --broken:#a4161a; --broken-bg:#fde6e6; --error:#8a5a00; --error-bg:#fff3d6;
  --skipped:#5b6673; --skipped-bg:#eceff2; --info:#1f4f8a; --info-bg:#e6eef9; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin:0; color:var(--fg); background:var(--bg); font:14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
code, pre, .pid, .hash, .code { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; }
header { padding:28px 40px 20px; border-bottom:4px solid var(--line); background:var(--soft); }
header.v-held { border-color:var(--held); } header.v-broken { border-color:var(--broken); background:var(--broken-bg); } header.v-error { border-color:var(--error); }
.brand { font-size:12px; letter-spacing:.08em; text-transform:uppercase; color:var(--muted); }
h1 { margin:4px 0 6px; font-size:30px; }
header.v-held h1 { color:var(--held); } header.v-broken h1 { color:var(--broken); } header.v-error h1 { color:var(--error); }
.lede { margin:0 0 12px; font-size:16px; max-width:70em; }
dl.meta { display:grid; grid-template-columns:max-content 1fr; gap:2px 14px; margin:0; font-size:13px; }
dl.meta dt, dl.kv dt { color:var(--muted); }
dl.meta dd, dl.kv dd { margin:0; overflow-wrap:anywhere; }
dl.kv { display:grid; grid-template-columns:max-content 1fr; gap:6px 16px; }
main { padding:8px 40px 40px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin:18px 0; }
.card { min-width:120px; padding:12px 16px; border:1px solid var(--line); border-radius:8px; background:var(--soft); display:flex; flex-direction:column; }
.card .num { font-size:30px; font-weight:700; line-height:1.1; }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.05em; }
.card.held { background:var(--held-bg); border-color:var(--held); } .card.held .num { color:var(--held); }
.card.broken { background:var(--broken-bg); border-color:var(--broken); } .card.broken .num { color:var(--broken); }
.card.error { background:var(--error-bg); border-color:var(--error); } .card.error .num { color:var(--error); }
.card.zero .num, .card.skipped .num { color:var(--muted); }
.card.score { display:inline-flex; margin-right:16px; }
.box { border:1px solid var(--line); border-left-width:5px; border-radius:6px; padding:10px 14px; margin:14px 0; }
.box.bad { border-color:var(--broken); background:var(--broken-bg); }
.box.warn { border-color:var(--error); background:var(--error-bg); }
.box ul { margin:6px 0 0; padding-left:20px; }
nav.toc { margin:10px 0 4px; font-size:13px; } nav.toc ol { margin:0; padding-left:20px; columns:2; }
a { color:var(--info); }
section.part { margin-top:28px; }
h2 { font-size:20px; border-bottom:1px solid var(--line); padding-bottom:4px; margin:0 0 12px; }
h3 { font-size:16px; margin:20px 0 8px; text-transform:capitalize; }
h3 .small { text-transform:none; font-weight:400; }
table { border-collapse:collapse; width:100%; margin:6px 0 12px; }
th, td { text-align:left; vertical-align:top; padding:6px 8px; border-bottom:1px solid var(--line); }
th { font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); background:var(--soft); }
td.promise { font-weight:600; width:28%; }
.c-status { width:96px; } .c-probe { width:30%; } .c-map { width:120px; }
.badge { display:inline-block; white-space:nowrap; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; }
.s-held, .c-pass { color:var(--held); background:var(--held-bg); }
.s-broken, .c-fail { color:#fff; background:var(--broken); }
.s-error, .c-warn { color:var(--error); background:var(--error-bg); }
.s-skipped, .s-untested { color:var(--skipped); background:var(--skipped-bg); }
.mechs { margin-top:4px; }
.c-info { color:var(--info); background:var(--info-bg); }
tr.s-row-broken td { background:var(--broken-bg); }
tr.row-fail td { background:var(--broken-bg); } tr.row-warn td { background:var(--error-bg); }
a.ref { display:inline-block; margin:1px 0; padding:0 6px; border-radius:4px; font:12px ui-monospace, "DejaVu Sans Mono", monospace; text-decoration:none; }
.pid { font-weight:600; font-size:13px; overflow-wrap:anywhere; }
.code { display:inline-block; font-size:11px; padding:0 4px; margin:1px 0; border:1px solid var(--line); border-radius:3px; background:var(--soft); }
pre { white-space:pre-wrap; overflow-wrap:anywhere; margin:0; }
pre.detail { font-size:12px; max-height:16em; overflow:auto; background:var(--soft); padding:4px 6px; border-radius:4px; }
pre.detail:empty { display:none; }
pre.denials { margin-top:4px; background:var(--error-bg); }
pre.policy, pre.cmd { font-size:12px; background:var(--soft); border:1px solid var(--line); border-radius:6px; padding:10px 12px; }
pre.cmd { font-size:13px; }
.hash { font-size:12px; overflow-wrap:anywhere; }
.small { font-size:12px; } .muted { color:var(--muted); }
.t-held { color:var(--held); } .t-broken { color:var(--broken); } .t-error { color:var(--error); }
.sev-critical { color:var(--broken); font-weight:700; } .sev-high { color:var(--broken); } .sev-medium { color:var(--error); } .sev-low, .sev-info { color:var(--muted); }
.legend { display:grid; grid-template-columns:1fr 1fr; gap:24px; align-items:start; }
footer { padding:16px 40px 32px; color:var(--muted); font-size:12px; border-top:1px solid var(--line); }
@media (max-width: 800px) { header, main, footer { padding-left:16px; padding-right:16px; } .legend { grid-template-columns:1fr; } nav.toc ol { columns:1; } }
@media print {
  @page { margin:14mm 12mm; }
  body { font-size:10.5pt; }
  * { -webkit-print-color-adjust:exact; print-color-adjust:exact; }
  header, main, footer { padding-left:0; padding-right:0; }
  nav.toc { display:none; }
  pre.detail { max-height:none; overflow:visible; }
  tr, .card, .box, dl.kv { break-inside:avoid; }
  thead { display:table-header-group; }
  h2, h3 { break-after:avoid; }
  section#probes, section#doctor { break-before:page; }
  a { color:inherit; text-decoration:none; }
}
`;
