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
    const summary = show({ kind: 'connect', host: '127.0.0.1', port: 9, verdict: 'deny', reason: 'not-allowed', count: 1900 });
    assert.doesNotMatch(summary, /undefined/);
    assert.match(summary, /DENIED \(not-allowed\) {2}1900 times/);
  });
});
