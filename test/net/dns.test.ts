/**
 * DNS through the broker: allowed names get stable synthetic addresses, nothing
 * else resolves, nothing is forwarded, garbage is refused without harm. Checked
 * with our own framed queries and with a real resolver (c-ares, through a UDP
 * bridge like the relay's port 53).
 */
import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { describe, it } from 'node:test';
import { buildQuery, buildResponse, parseQuery, readName, RCODE_NXDOMAIN, TYPE_A } from '../../src/net/dns.js';
import { dnsExchange, dnsQuery, relay, readAll, testBroker, udpDnsBridge } from './helpers.js';

const RULES = [
  { host: 'api.test', port: 443 },
  { host: '*.github.com', port: 443 },
];

describe('DNS parsing (dns.ts)', { timeout: 20_000 }, () => {
  it('parses a query and keeps the case of the labels; the name is lowercased', () => {
    const q = parseQuery(buildQuery(7, 'API.Test.', TYPE_A));
    assert.ok(!('error' in q));
    assert.deepEqual([q.id, q.name, q.labels, q.qtype, q.rd], [7, 'api.test', ['API', 'Test'], 1, true]);
  });

  it('refuses QDCOUNT != 1, class != IN, a response, and a name with a dot inside a label', () => {
    const base = buildQuery(9, 'a.test', TYPE_A);
    const two = Buffer.from(base);
    two.writeUInt16BE(2, 4);
    assert.match((parseQuery(two) as { error: string }).error, /QDCOUNT 2/);
    const chaos = Buffer.from(base);
    chaos.writeUInt16BE(3, chaos.length - 2);
    assert.match((parseQuery(chaos) as { error: string }).error, /class 3/);
    const resp = Buffer.from(base);
    resp.writeUInt16BE(0x8100, 2);
    assert.equal((parseQuery(resp) as { rcode: number }).rcode, 1);
    // One label "a.b" on the wire would read as two labels once joined.
    const dotted = Buffer.concat([base.subarray(0, 12), Buffer.from([3, 0x61, 0x2e, 0x62, 0]), Buffer.from([0, 1, 0, 1])]);
    const r = parseQuery(dotted) as { error: string; id: number };
    assert.match(r.error, /characters/);
    assert.equal(r.id, 9);
  });

  it('follows a backward compression pointer, refuses forward pointers and self-loops', () => {
    // header, then at 12: "x" label + pointer to 14? A pointer to itself (offset 12 -> 12) is a loop.
    const hdr = buildQuery(1, 'a', TYPE_A).subarray(0, 12);
    const loop = Buffer.concat([hdr, Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    assert.match((parseQuery(loop) as { error: string }).error, /backwards/);
    const forward = Buffer.concat([hdr, Buffer.from([0xc0, 20, 0, 1, 0, 1, 0, 0, 0])]);
    assert.match((parseQuery(forward) as { error: string }).error, /backwards/);
    // A name elsewhere: "api" then a pointer back to "test" placed earlier.
    const msg = Buffer.concat([Buffer.from([4, 0x74, 0x65, 0x73, 0x74, 0]), Buffer.from([3, 0x61, 0x70, 0x69, 0xc0, 0])]);
    const n = readName(msg, 6);
    assert.deepEqual(n, { labels: ['api', 'test'], end: 12 });
  });

  it('never throws on random bytes', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256);
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(Array.from({ length: rnd() % 64 }, rnd));
      if (i % 2 === 0 && b.length >= 12) b.writeUInt16BE(1, 4); // QDCOUNT 1: get into the name parser
      const q = parseQuery(b);
      if (!('error' in q)) assert.ok(q.labels.every((l) => /^[A-Za-z0-9_-]+$/.test(l)));
    }
  });

  it('builds NXDOMAIN with the question echoed and no answer', () => {
    const q = parseQuery(buildQuery(0xbeef, 'Evil.Com', 16, { rd: false }));
    assert.ok(!('error' in q));
    const r = buildResponse(q, { rcode: RCODE_NXDOMAIN });
    assert.equal(r.readUInt16BE(0), 0xbeef);
    assert.equal(r.readUInt16BE(2), 0x8083); // QR, RA, NXDOMAIN; RD not set since the query did not set it
    assert.deepEqual([r.readUInt16BE(4), r.readUInt16BE(6)], [1, 0]);
    assert.ok(r.includes(Buffer.from('\x04Evil\x03Com\x00', 'latin1')));
  });
});

describe('DNS through the broker', { timeout: 20_000 }, () => {
  it('answers an allowed name with a synthetic 127.100/16 address, the same one every time, TTL 5', async () => {
    const b = await testBroker({ allow: RULES });
    const r1 = await dnsQuery(b.socketPath, 'api.test', 'A', 0x4242);
    assert.ok(r1);
    assert.equal(r1.id, 0x4242);
    assert.equal(r1.rcode, 0);
    assert.equal(r1.flags & 0x8000, 0x8000, 'QR');
    assert.equal(r1.flags & 0x0100, 0x0100, 'RD copied');
    assert.equal(r1.flags & 0x0080, 0x0080, 'RA');
    assert.deepEqual(r1.question, { name: 'api.test', qtype: 1, qclass: 1 });
    assert.equal(r1.answers.length, 1);
    assert.equal(r1.answers[0]!.address, '127.100.0.1');
    assert.equal(r1.answers[0]!.ttl, 5);

    const other = await dnsQuery(b.socketPath, 'x.github.com', 'A');
    assert.equal(other?.answers[0]?.address, '127.100.0.2');
    const again = await dnsQuery(b.socketPath, 'API.TEST.', 'A');
    assert.equal(again?.answers[0]?.address, '127.100.0.1');
    assert.deepEqual([...b.broker.names()], [
      ['api.test', '127.100.0.1'],
      ['x.github.com', '127.100.0.2'],
    ]);
    const e = await b.event((e) => e.kind === 'dns' && e.host === 'x.github.com');
    assert.deepEqual(e, { type: 'net', kind: 'dns', host: 'x.github.com', qtype: 'A', rule: '*.github.com:443', verdict: 'allow' });
  });

  it('AAAA (and other types) for an allowed name: NOERROR with no answers, and no address allocated', async () => {
    const b = await testBroker({ allow: RULES });
    const r = await dnsQuery(b.socketPath, 'api.test', 'AAAA');
    assert.equal(r?.rcode, 0);
    assert.equal(r?.answers.length, 0);
    assert.deepEqual(r?.question, { name: 'api.test', qtype: 28, qclass: 1 });
    const https = await dnsQuery(b.socketPath, 'api.test', 'HTTPS');
    assert.deepEqual([https?.rcode, https?.answers.length], [0, 0]);
    assert.equal(b.broker.names().size, 0);
    await b.event((e) => e.qtype === 'AAAA' && e.verdict === 'allow');
    await b.event((e) => e.qtype === 'HTTPS' && e.verdict === 'allow');
  });

  it('wildcards match one or more extra labels, not the bare domain nor a lookalike', async () => {
    const b = await testBroker({ allow: RULES });
    for (const name of ['a.github.com', 'a.b.github.com']) {
      assert.equal((await dnsQuery(b.socketPath, name, 'A'))?.rcode, 0, name);
    }
    for (const name of ['github.com', 'evilgithub.com', 'github.com.evil.com']) {
      assert.equal((await dnsQuery(b.socketPath, name, 'A'))?.rcode, 3, name);
    }
  });

  it('a name not allowed is NXDOMAIN and a deny event', async () => {
    const b = await testBroker({ allow: RULES });
    const r = await dnsQuery(b.socketPath, 'example.com', 'A', 99);
    assert.deepEqual([r?.id, r?.rcode, r?.answers.length], [99, 3, 0]);
    const e = await b.event((e) => e.host === 'example.com');
    assert.deepEqual(e, { type: 'net', kind: 'dns', host: 'example.com', qtype: 'A', verdict: 'deny', reason: 'not-allowed' });
  });

  it('a TXT query carrying data to another domain is NXDOMAIN: nothing is forwarded', async () => {
    const b = await testBroker({ allow: RULES });
    const r = await dnsQuery(b.socketPath, 'secret-data.evil.com', 'TXT');
    assert.equal(r?.rcode, 3);
    assert.equal(r?.answers.length, 0);
    const e = await b.event((e) => e.host === 'secret-data.evil.com');
    assert.deepEqual([e.verdict, e.reason, e.qtype], ['deny', 'not-allowed', 'TXT']);
  });

  it('malformed queries: FORMERR when an ID is readable, else a plain close; the broker goes on serving', async () => {
    const b = await testBroker({ allow: RULES });
    // A header with QDCOUNT 0.
    const noQuestion = Buffer.from([0xab, 0xcd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const r = await dnsExchange(b.socketPath, noQuestion);
    assert.deepEqual([r?.id, r?.rcode, r?.qd, r?.answers.length], [0xabcd, 1, 0, 0]);
    // One byte: no ID to answer to.
    assert.equal(await dnsExchange(b.socketPath, Buffer.from([7])), null);
    // Length prefix far beyond the bound: FORMERR to the ID, without waiting for 60 KB.
    const huge = await dnsExchange(b.socketPath, Buffer.from([0xf0, 0x00, 0x12, 0x34, 1, 0]), false);
    assert.deepEqual([huge?.id, huge?.rcode], [0x1234, 1]);
    // A compression loop.
    const loop = Buffer.concat([buildQuery(0x5555, 'a', TYPE_A).subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    assert.equal((await dnsExchange(b.socketPath, loop))?.rcode, 1);
    await b.event((e) => e.kind === 'dns' && e.reason === 'malformed');
    assert.equal(b.events.filter((e) => e.reason === 'malformed').length, 4);

    const ok = await dnsQuery(b.socketPath, 'api.test', 'A');
    assert.equal(ok?.answers[0]?.address, '127.100.0.1');
  });

  it('a query truncated by the peer half-closing is refused, not waited for', async () => {
    const b = await testBroker({ allow: RULES });
    const sock = await relay(b.socketPath, 'dns\n');
    sock.end(Buffer.from([0, 40, 0x11, 0x22, 1, 0])); // says 40 bytes, sends 4
    const reply = await readAll(sock);
    assert.equal(reply.readUInt16BE(2), 0x1122);
    assert.equal(reply.readUInt16BE(4) & 0xf, 1);
  });

  it('a real resolver (c-ares) gets the synthetic address, ENODATA for AAAA, ENOTFOUND otherwise', async () => {
    const b = await testBroker({ allow: RULES });
    const port = await udpDnsBridge(b.socketPath);
    const res = new Resolver({ timeout: 2000, tries: 1 });
    res.setServers([`127.0.0.1:${port}`]);
    assert.deepEqual(await res.resolve4('api.test'), ['127.100.0.1']);
    assert.deepEqual(await res.resolve4('Deep.Sub.GitHub.com'), ['127.100.0.2']);
    await assert.rejects(res.resolve6('api.test'), { code: 'ENODATA' });
    await assert.rejects(res.resolve4('example.com'), { code: 'ENOTFOUND' });
    await assert.rejects(res.resolveTxt('secret-data.evil.com'), { code: 'ENOTFOUND' });
  });
});
