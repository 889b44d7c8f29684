/** `ward audit show`'s lines for egress records: only the fields each record has. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditRecord } from '../../src/audit/format.js';
import { renderTimeline } from '../../src/audit/timeline.js';

const show = (r: Record<string, unknown>) => renderTimeline([{ line: 1, record: { ts: '2025-01-01T00:00:00.000Z', run_id: 'run00000', type: 'net', ...r } as unknown as AuditRecord }]);

describe('ward audit show: net records', () => {
  it('an http record shows its request and bytes out, never "undefined"', () => {
    const text = show({ kind: 'http', host: 'api.test', port: 80, verdict: 'allow', rule: 'api.test:80', method: 'POST', path: '/up', bytes_out: 206, note: 'the connection closed before the request\'s body ended' });
    assert.doesNotMatch(text, /undefined/);
    assert.match(text, /net http +api\.test:80 POST \/up {2}allowed by api\.test:80 {2}206 B out {2}\(the connection closed/);
  });

  it('a connection record keeps its traffic; a refusal summary shows its count', () => {
    assert.match(show({ kind: 'connect', host: 'a.test', port: 443, verdict: 'allow', rule: 'a.test:443', bytes_out: 1, bytes_in: 2, duration_ms: 3 }), /1 B out, 2 B in, 3 ms$/m);
    // The relay gave no count: unknown, never shown as nothing having gone.
    assert.match(show({ kind: 'connect', host: 'a.test', port: 443, verdict: 'allow', rule: 'a.test:443', bytes_out: null, bytes_in: null, duration_ms: 3, note: 'the relay gave no byte count: the bytes are unknown' }), /unknown B out, unknown B in, 3 ms {2}\(the relay gave no byte count/);
    const summary = show({ kind: 'connect', host: '127.0.0.1', port: 9, verdict: 'deny', reason: 'not-allowed', count: 1900 });
    assert.doesNotMatch(summary, /undefined/);
    assert.match(summary, /DENIED \(not-allowed\) {2}1900 times/);
  });
});

describe('ward audit show: fields a sandbox can choose', () => {
  it('every record keeps to its own lines, with no raw control, C1, separator or bidi character', () => {
    const bad = 'x\n2026-11-22 19:59:59.000  deadbeef  exit 0  5 ms\x1b[2K\u0085\u2028\u202e\r';
    const at = (type: string, r: Record<string, unknown>) => ({ ts: '2025-01-01T00:00:00.000Z', run_id: 'run00000', type, ...r }) as unknown as AuditRecord;
    const records = [
      at('launch', { argv: ['cat', bad], cwd: bad, policy_sha256: 'p', plan_sha256: 'q', degraded: [bad] }),
      at('denial', { layer: 'supervisor', what: `openat ${bad}`, verdict: 'refused', detail: bad }),
      at('revocation', { rule: 0, trigger: `read ${bad}`, pid: 2, by: 'openat', revoked: [bad], killed: [{ pid: 3, file: bad, through: 'fd' }] }),
      at('net', { kind: 'http', host: bad, port: 80, verdict: 'deny', reason: bad, method: bad, path: bad, note: bad }),
      at('exit', { exit_code: 0, reason: 'exit', duration_ms: 1, message: bad }),
      at('launch-failed', { step: 'spawn', message: bad, argv: [bad] }),
      at(bad, {}),
    ];
    const lines = renderTimeline([...records.map((record, i) => ({ line: i + 1, record })), { line: 8, error: `not a record: ${bad}` }]).split('\n');
    // launch: 4 lines (with DEGRADED); launch-failed: 2; the others 1 each; then a blank line, the summary and the final newline.
    assert.equal(lines.length, 4 + 1 + 1 + 1 + 1 + 2 + 1 + 1 + 3, lines.join('\n'));
    for (const l of lines) assert.doesNotMatch(l, /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/, l);
    assert.equal(lines.filter((l) => l.startsWith('2026-11-22 19:59:59')).length, 0);
    assert.ok(lines.every((l) => l === '' || /^(2025-01-01 00:00:00\.000|\?) |^ {35}|^\d+ records/.test(l)), lines.join('\n'));
  });
});

describe('ward audit show: a tampered log', () => {
  it('a record with fields of the wrong type is shown as such, and the records around it still are', () => {
    const at = (type: string, r: Record<string, unknown>) => ({ ts: '2025-01-01T00:00:00.000Z', run_id: 'run00000', type, ...r }) as unknown as AuditRecord;
    const records = [
      at('exit', { exit_code: 3, reason: 'exit', duration_ms: 1 }),
      at('launch', { argv: ['true'], layers: { cgroup: { version: 1, applied: 'zz' } } }),
      at('launch', { argv: ['true'], verification: { properties: 5 } }),
      at('launch-failed', { step: 'spawn', message: 'm', argv: ['x'] }),
    ];
    const text = renderTimeline(records.map((record, i) => ({ line: i + 1, record })));
    assert.match(text, /exit 3 /);
    assert.match(text, /line 2: a launch record not in the form Ward writes \(/);
    assert.match(text, /line 3: a launch record not in the form Ward writes \(/);
    assert.match(text, /REFUSED at spawn: m/);
    assert.match(text, /4 records, 1 runs, 1 refused\./);
  });
});
