/**
 * The auditor report as files: report.json and report.html carry the same
 * numbers, hostile probe output stays text, the page loads nothing, and
 * inconsistent inputs are called out rather than smoothed over.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sha256Hex } from '../../src/policy/canonical.js';
import { buildReport, escapeHtml, napkin, renderHtml, shellQuote, writeReport, type ReportDocument, type ReportInput } from '../../src/report/index.js';
import { h } from '../../src/report/html.js';
import { readableJson } from '../../src/report/render.js';
import { tempDir } from '../helpers.js';
import { pageNumbers, sampleInput } from './fixture.js';

function fixture(): { dir: string; input: ReportInput } {
  const base = tempDir('ward-report-');
  const ws = path.join(base, 'ws');
  const home = path.join(base, 'home');
  mkdirSync(ws);
  mkdirSync(home);
  return { dir: path.join(base, 'out'), input: sampleInput({ workspace: ws, home }) };
}

describe('writeReport', () => {
  it('writes report.json and report.html into DIR (created if missing) and returns their paths', async () => {
    const { dir, input } = fixture();
    const out = await writeReport(dir, input);
    assert.equal(out.json, path.join(dir, 'report.json'));
    assert.equal(out.html, path.join(dir, 'report.html'));
    assert.ok(statSync(out.json).size > 1000);
    assert.ok(statSync(out.html).size > 5000);
    const doc = JSON.parse(readFileSync(out.json, 'utf8')) as ReportDocument;
    assert.equal(doc.format, 'ward-report');
    assert.equal(doc.format_version, 1);
    assert.deepEqual(doc.probes, input.probes, 'the probe run is kept whole, details included');
    assert.equal(doc.policy.canonical, input.policy.canonical);
    assert.equal(doc.policy.sha256_matches_canonical, true);
  });

  it('the page and report.json carry the same numbers, probe rows and policy hash', async () => {
    const { dir, input } = fixture();
    const out = await writeReport(dir, input);
    const doc = JSON.parse(readFileSync(out.json, 'utf8')) as ReportDocument;
    const page = pageNumbers(readFileSync(out.html, 'utf8'));
    assert.equal(page.held, doc.summary.held);
    assert.equal(page.broken, doc.summary.broken);
    assert.equal(page.error, doc.summary.error);
    assert.equal(page.skipped, doc.summary.skipped);
    assert.equal(page.probes, doc.probes.probes.length);
    assert.deepEqual(page.rows, doc.probes.probes.map((p) => ({ id: p.id, status: p.status })));
    assert.equal(page.policy, doc.policy.sha256);
    assert.equal(page.verdict, 'broken');
    // And the summary is the probes' own: 12 held + 1 broken + 1 error + 1 skipped.
    assert.deepEqual(doc.summary, { probes: 15, held: 12, broken: 1, error: 1, skipped: 1 });
    assert.deepEqual(doc.warnings, []);
  });

  it('a probe detail with <script> and markup is inert text, and the page allows no script or outside resource', async () => {
    const { dir, input } = fixture();
    const html = readFileSync((await writeReport(dir, input)).html, 'utf8');
    assert.doesNotMatch(html, /<script/i);
    assert.doesNotMatch(html, /<img/i);
    assert.doesNotMatch(html, /<[a-z]+[^>]*\son[a-z]+=/i, 'no element carries an event handler');
    assert.ok(html.includes('&lt;script&gt;document.title=&quot;pwned&quot;'), 'the text is there, escaped');
    assert.ok(html.includes('&amp;amp;'), 'an entity in the output is shown as written, not decoded');
    assert.ok(html.includes('\\x1b[31mred'), 'control bytes are made visible');
    assert.doesNotMatch(html, /\u001b/);
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">/);
    assert.doesNotMatch(html, /(src|href)="(https?:|\/\/)/i, 'nothing is loaded from elsewhere');
    assert.doesNotMatch(html, /@import|url\(/i);
  });

  it('escapes in attributes as well as text, and a long detail is cut in the page but whole in the JSON', () => {
    const { input } = fixture();
    input.probes.probes[0]!.id = 'fs."quoted"<id>';
    const doc = buildReport(input);
    const html = renderHtml(doc);
    assert.ok(html.includes('data-probe-id="fs.&quot;quoted&quot;&lt;id&gt;"'));
    assert.ok(!html.includes('x'.repeat(9000)));
    assert.match(html, /more characters in report\.json/);
    assert.equal(doc.probes.probes.find((p) => p.id === 'fs.symlink-race')!.detail.length, 9000);
  });

  it('the napkin: one row per promise in the napkin\'s order, worst status wins, an untested promise is a row', () => {
    const { input } = fixture();
    const rows = napkin(input.probes.probes);
    assert.deepEqual(
      rows.map((r) => [r.promise, r.status]),
      [
        ['filesystem', 'broken'],
        ['syscalls', 'held'],
        ['egress', 'held'],
        ['resources', 'held'],
        ['escalation', 'error'],
        ['secrets', 'held'],
        // The fixture has no supervised-mode probe: the napkin still shows the promise, untested.
        ['dynamic-rules', 'untested'],
        ['usability', 'held'],
      ],
    );
    assert.deepEqual(rows[0]!.mechanisms, ['mount-namespace', 'landlock']);
    assert.equal(rows[0]!.probes.length, 5);
    const none = napkin(input.probes.probes.filter((p) => p.promise !== 'secrets'));
    assert.equal(none.find((r) => r.promise === 'secrets')!.status, 'untested');
    assert.match(renderHtml(buildReport({ ...input, probes: { ...input.probes, probes: input.probes.probes.filter((p) => p.promise !== 'secrets') } })), /no probe tests this promise yet/);
  });

  it('inconsistent inputs are reported as warnings, on the page and in the JSON', () => {
    const { input } = fixture();
    const bad: ReportInput = {
      ...input,
      probes: { ...input.probes, summary: { held: 99, broken: 0, error: 0, skipped: 0 }, policy_sha256: 'f'.repeat(64) },
      policy: { ...input.policy, sha256: 'e'.repeat(64) },
      audit: { log: '/var/log/x.jsonl', head: { seq: 3, hash: 'b'.repeat(64) } },
    };
    const doc = buildReport(bad);
    assert.equal(doc.policy.sha256_matches_canonical, false);
    assert.equal(doc.summary.held, 12, 'the counts come from the results, not the claimed summary');
    assert.equal(doc.warnings.length, 4, doc.warnings.join('\n'));
    assert.match(doc.warnings.join('\n'), /summary \(held 99, broken 0, error 0, skipped 0\) does not match its results \(held 12, broken 1, error 1, skipped 1\)/);
    assert.match(doc.warnings.join('\n'), /not the hash of the canonical policy/);
    assert.match(doc.warnings.join('\n'), /probes ran under policy f{64}/);
    assert.match(doc.warnings.join('\n'), /not signed/);
    const html = renderHtml(doc);
    assert.match(html, /id="warnings"/);
    assert.match(html, /does not match the text below/);
  });

  it('the audit section names the log, the chain head and signature, and the command that re-checks it', () => {
    const { input } = fixture();
    const doc = buildReport(input);
    assert.match(doc.audit!.verify_command, /^ward audit verify '.*\/audit <1>\.jsonl' --pubkey \S+audit\.pub$/);
    const html = renderHtml(doc);
    assert.ok(html.includes(`data-audit-seq="1234"`));
    assert.ok(html.includes('a'.repeat(64)));
    assert.ok(html.includes(input.audit!.head!.signature!));
    assert.ok(html.includes(escapeHtml(doc.audit!.verify_command)));
    const none = renderHtml(buildReport({ ...input, audit: undefined }));
    assert.match(none, /id="audit-absent"/);
    assert.match(buildReport({ ...input, audit: undefined }).warnings.join(), /no audit log is named/);
  });

  it('the policy section shows the canonical policy and a hash that re-checks', () => {
    const { input } = fixture();
    const html = renderHtml(buildReport(input));
    assert.equal(sha256Hex(input.policy.canonical), input.policy.sha256);
    assert.match(html, /matches the text below/);
    assert.ok(html.includes(escapeHtml(readableJson(JSON.parse(input.policy.canonical)))));
    assert.deepEqual(JSON.parse(readableJson(JSON.parse(input.policy.canonical))), JSON.parse(input.policy.canonical), 'the readable form is the same JSON');
  });

  it('without doctor findings the page says so; with them it shows the score and each check', () => {
    const { input } = fixture();
    assert.match(renderHtml(buildReport(input)), /id="doctor-absent"/);
    const doctor = {
      ward_version: '0.1.0',
      generated: '2026-05-01T09:59:00.000Z',
      host: { kernel: '6.18.44', arch: 'x86_64', uid: 1000, user: 'u' },
      policy: { sha256: input.policy.sha256, sources: input.policy.sources },
      checks: [
        { id: 'host.bwrap', title: 'bubblewrap', severity: 'critical' as const, status: 'pass' as const, evidence: '/usr/bin/bwrap: bubblewrap 0.8.0' },
        { id: 'keys.audit-key', title: 'key', severity: 'high' as const, status: 'fail' as const, evidence: 'mode 0644 <b>', fix: 'chmod 600', degrades: 'signatures' },
      ],
      score: 92,
      degrades: ['keys.audit-key: signatures'],
      summary: { pass: 1, fail: 1, warn: 0, info: 0 },
      exit_code: 1 as const,
    };
    const html = renderHtml(buildReport({ ...input, doctor }));
    assert.match(html, /data-doctor-score="92">92</);
    assert.match(html, /data-check-id="keys\.audit-key" data-status="fail" data-severity="high"/);
    assert.ok(html.includes('mode 0644 &lt;b&gt;'));
    assert.match(html, /What would degrade on this host/);
  });

  it('shellQuote and the h template', () => {
    assert.equal(shellQuote('/a/b.jsonl'), '/a/b.jsonl');
    assert.equal(shellQuote("/a b/it's"), `'/a b/it'\\''s'`);
    assert.equal(h`<p>${'<x>'}${h`<i>${'&'}</i>`}${['a', h`<br>`]}${null}${undefined}${false}${3}</p>`.value, '<p>&lt;x&gt;<i>&amp;</i>a<br>3</p>');
  });
});
