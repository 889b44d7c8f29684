/**
 * Refusals cannot flood the audit log: the first DENY_RECORDS_MAX of a broker's life are
 * recorded one by one, the rest are counted per destination and written as summaries (count,
 * first and last time) every DENY_SUMMARY_MS and when the broker closes. Every connection is
 * still refused at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DENY_RECORDS_MAX, DNS_ALLOW_RECORDS_MAX } from '../../src/net/broker.js';
import { closedWithin, dnsQuery, relayTcp, testBroker } from './helpers.js';

describe('refusal records are bounded', { timeout: 60_000 }, () => {
  it('2,000 refused connects: each refused at once; 100 records one by one, then summaries whose counts add up exactly', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 443 }] });
    const N = 2000;
    for (let i = 0; i < N; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, j) => {
          // Two destinations, so the summaries are per destination.
          const sock = await relayTcp(b.socketPath, '127.0.0.1', (i + j) % 2 === 0 ? 9 : 10);
          await closedWithin(sock);
        }),
      );
    }
    await b.broker.close();
    const denied = b.events.filter((e) => e.verdict === 'deny');
    const single = denied.filter((e) => e.count === undefined);
    const summaries = denied.filter((e) => e.count !== undefined);
    assert.equal(single.length, DENY_RECORDS_MAX);
    assert.ok(summaries.length >= 2 && summaries.length <= 4, JSON.stringify(summaries));
    assert.equal(single.length + summaries.reduce((n, e) => n + e.count!, 0), N, 'every refusal is accounted for, exactly');
    for (const port of [9, 10]) {
      const mine = summaries.filter((e) => e.port === port);
      assert.ok(mine.length >= 1, `a summary for port ${port}`);
      for (const e of mine) {
        assert.equal(e.kind, 'connect');
        assert.equal(e.host, '127.0.0.1');
        assert.equal(e.reason, 'not-allowed');
        assert.ok(Date.parse(e.first!) <= Date.parse(e.last!));
        assert.match(e.note ?? '', /counted, not recorded one by one/);
      }
    }
  });

  it('invented destinations (random DNS names) share one summary past the per-interval bound', async () => {
    const b = await testBroker({ allow: [] });
    for (let i = 0; i < 400; i++) {
      const a = await dnsQuery(b.socketPath, `x${i}.exfil.test`, 'TXT');
      assert.equal(a?.rcode, 3, 'NXDOMAIN every time');
    }
    await b.broker.close();
    const summaries = b.events.filter((e) => e.count !== undefined);
    assert.ok(summaries.length <= 51, `${summaries.length} summaries`);
    assert.ok(summaries.some((e) => e.note?.includes('other destinations') && e.host === undefined));
    const total = b.events.filter((e) => e.count === undefined).length + summaries.reduce((n, e) => n + e.count!, 0);
    assert.equal(total, 400);
  });

  it('allowed DNS answers are bounded too: 1,000 TXT queries for an allowed name are 100 records and summaries that count the rest exactly', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 443 }] });
    const N = 1000;
    for (let i = 0; i < N; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, j) => {
          const a = await dnsQuery(b.socketPath, 'web.test', (i + j) % 2 === 0 ? 'TXT' : 'A');
          assert.equal(a?.rcode, 0, 'answered every time');
        }),
      );
    }
    await b.broker.close();
    const dns = b.events.filter((e) => e.kind === 'dns');
    const single = dns.filter((e) => e.count === undefined);
    const summaries = dns.filter((e) => e.count !== undefined);
    assert.equal(single.length, DNS_ALLOW_RECORDS_MAX);
    assert.ok(summaries.length >= 2 && summaries.length <= 6, JSON.stringify(summaries));
    assert.equal(single.length + summaries.reduce((n, e) => n + e.count!, 0), N, 'every answer is accounted for');
    for (const e of summaries) {
      assert.equal(e.verdict, 'allow');
      assert.equal(e.host, 'web.test');
      assert.equal(e.rule, 'web.test:443');
      assert.ok(e.qtype === 'TXT' || e.qtype === 'A');
      assert.match(e.note ?? '', /answer\(s\) like this one, counted/);
    }
    assert.ok(b.events.length < 120, `${b.events.length} records`);
  });
});
