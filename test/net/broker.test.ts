/**
 * The broker as a server facing a hostile peer (the agent can reach its socket
 * too): rule matching, garbage headers, overload, an embedder whose callback
 * throws, and close().
 */
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import { matchRule, ruleText, startBroker, type NetEvent } from '../../src/net/broker.js';
import { buildQuery, qtypeNumber } from '../../src/net/dns.js';
import { closedWithin, dnsQuery, firstData, keyFor, listen, onCleanup, readAll, relay, relayTcp, tcpServer, tempDir, testBroker, within } from './helpers.js';

describe('matchRule / ruleText', { timeout: 20_000 }, () => {
  const rules = [
    { host: 'api.test', port: 443 },
    { host: '*.github.com', port: 443 },
    { host: '*.github.com', port: 22 },
    { host: '10.1.2.3', port: 8080 },
  ];

  it('exact names, any case, trailing dot; the port must match unless omitted', () => {
    assert.equal(matchRule(rules, 'API.test.', 443), rules[0]);
    assert.equal(matchRule(rules, 'api.test', 80), null);
    assert.equal(matchRule(rules, 'api.test'), rules[0]);
    assert.equal(matchRule(rules, 'api.test.evil', 443), null);
    assert.equal(matchRule(rules, '10.1.2.3', 8080), rules[3]);
    assert.equal(matchRule(rules, '10.1.2.4', 8080), null);
  });

  it('a wildcard needs at least one more label, and a real label boundary', () => {
    assert.equal(matchRule(rules, 'a.github.com', 443), rules[1]);
    assert.equal(matchRule(rules, 'a.b.github.com', 22), rules[2]);
    assert.equal(matchRule(rules, 'github.com', 443), null);
    assert.equal(matchRule(rules, 'evilgithub.com', 443), null);
    assert.equal(matchRule(rules, '.github.com', 443), null);
    assert.equal(matchRule(rules, 'a..github.com', 443), null);
    assert.equal(matchRule(rules, 'x y.github.com', 443), null);
  });

  it('ruleText is host:port', () => {
    assert.equal(ruleText(rules[1]!), '*.github.com:443');
  });
});

describe('the broker socket', { timeout: 20_000 }, () => {
  it('is created with mode 0600 and removed by close(), which also ends live connections and reports them', async () => {
    const server = tcpServer((s) => s.write('hi\n'));
    const port = await listen(server);
    const events: NetEvent[] = [];
    const socketPath = path.join(tempDir(), 'b.sock');
    const broker = await startBroker({ socketPath, key: keyFor(socketPath), allow: [{ host: 'x.test', port }], allowLocal: [], proxyPort: 3128, resolve: async () => '127.0.0.1', onEvent: (e) => events.push(e) });
    onCleanup(() => broker.close()); // if an assertion fails before the close() under test
    assert.equal(statSync(socketPath).mode & 0o777, 0o600);
    assert.ok(statSync(socketPath).isSocket());
    const ip = (await dnsQuery(socketPath, 'x.test', 'A'))!.answers[0]!.address!;
    const sock = await relayTcp(socketPath, ip, port);
    await firstData(sock); // connected end to end
    const idle = await relay(socketPath, ''); // no header yet
    await broker.close();
    await within(broker.close(), 'a second close()', 1000);
    assert.equal(existsSync(socketPath), false);
    await closedWithin(sock, 1000);
    await closedWithin(idle, 1000);
    const conn = events.filter((e) => e.kind === 'connect');
    assert.equal(conn.length, 1, JSON.stringify(events)); // the undecided one is not reported
    assert.equal(conn[0]!.verdict, 'allow');
    assert.equal(conn[0]!.bytes_in, 3);
  });

  it('replaces a stale socket file, but refuses to delete anything else at the path', async () => {
    const dir = tempDir();
    const stale = path.join(dir, 'stale.sock');
    const old = net.createServer();
    await new Promise<void>((r) => old.listen(stale, r));
    // Leave the file behind as a crashed broker would.
    (old as unknown as { _handle: { close(): void } | null })._handle?.close();
    const b = await startBroker({ socketPath: stale, key: keyFor(stale), allow: [], allowLocal: [], proxyPort: 1, onEvent: () => {} });
    onCleanup(() => b.close());
    await b.close();
    const file = path.join(dir, 'regular');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, 'keep');
    await assert.rejects(startBroker({ socketPath: file, key: keyFor(file), allow: [], allowLocal: [], proxyPort: 1, onEvent: () => {} }), { code: 'EADDRINUSE' });
    assert.equal(existsSync(file), true);
  });

  it('garbage header lines are refused at once, and the broker goes on serving', async () => {
    const b = await testBroker({ allow: [{ host: 'api.test', port: 443 }] });
    const garbage = [
      'hello world\n',
      'tcp 127.100.0.1\n',
      'tcp 127.100.0.1 99999\n',
      'tcp 127.100.000.1 443\n',
      'tcp 127.100.0.1 0443\n',
      'tcp 300.1.1.1 443\n',
      'TCP 127.100.0.1 443\n',
      'dns \n',
      '\x00\x01\x02\xff\n',
      'x'.repeat(300), // no newline within 256 bytes
      `tcp 127.100.0.1 443${' '.repeat(300)}\n`,
    ];
    const started = Date.now();
    for (const g of garbage) await closedWithin(await relay(b.socketPath, g), 1000);
    assert.ok(Date.now() - started < 2000, 'no waiting for a timeout');
    // A peer that closes without a word.
    const quiet = await relay(b.socketPath, '');
    quiet.end();
    await closedWithin(quiet);
    await b.event(() => b.events.length === garbage.length + 1);
    assert.ok(b.events.every((e) => e.verdict === 'deny' && e.reason === 'malformed'), JSON.stringify(b.events));
    assert.equal((await dnsQuery(b.socketPath, 'api.test', 'A'))?.answers[0]?.address, '127.100.0.1');
  });

  it('beyond maxConnections a connection is closed at once with an overload event; capacity returns after', async () => {
    const b = await testBroker({ allow: [{ host: 'api.test', port: 443 }], maxConnections: 2 });
    // Counted once the relay's line says what they are (a "done" line never is): two idle proxy connections.
    const a1 = await relay(b.socketPath, 'tcp 127.0.0.1 3128\n');
    const a2 = await relay(b.socketPath, 'tcp 127.0.0.1 3128\n');
    await new Promise((r) => setTimeout(r, 50)); // let the broker accept both
    const over = await relay(b.socketPath, 'dns\n');
    await closedWithin(over, 1000);
    const e = await b.event((e) => e.reason === 'overload');
    assert.deepEqual(e, { type: 'net', kind: 'connect', verdict: 'deny', reason: 'overload' });
    a1.destroy();
    a2.destroy();
    await b.event(() => b.events.filter((e) => e.reason === 'malformed').length === 2);
    assert.equal((await dnsQuery(b.socketPath, 'api.test', 'A'))?.rcode, 0);
  });

  it('an onEvent that throws does not break the broker', async () => {
    const socketPath = path.join(tempDir(), 'b.sock');
    const broker = await startBroker({
      socketPath,
      key: keyFor(socketPath),
      allow: [{ host: 'api.test', port: 443 }],
      allowLocal: [],
      proxyPort: 3128,
      onEvent: () => {
        throw new Error('embedder bug');
      },
    });
    try {
      assert.equal((await dnsQuery(socketPath, 'api.test', 'A'))?.rcode, 0);
      assert.equal((await dnsQuery(socketPath, 'evil.test', 'A'))?.rcode, 3);
      const g = await relay(socketPath, 'junk\n');
      await closedWithin(g);
      assert.equal((await dnsQuery(socketPath, 'api.test', 'A'))?.answers[0]?.address, '127.100.0.1');
    } finally {
      await broker.close();
    }
  });

  it('a flood of random bytes after valid headers never takes the broker down', async () => {
    const sink = tcpServer((s) => s.resume().on('end', () => s.end()));
    const port = await listen(sink);
    const b = await testBroker({ allow: [{ host: 'api.test', port }], proxyPort: 3128 });
    const ip = (await dnsQuery(b.socketPath, 'api.test', 'A'))!.answers[0]!.address!;
    let seed = 1;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    const headers = ['dns\n', `tcp ${ip} ${port}\n`, 'tcp 127.0.0.1 3128\n'];
    for (let i = 0; i < 60; i++) {
      const sock = await relay(b.socketPath, headers[i % 3]!);
      const junk = Buffer.from(Array.from({ length: 1 + rnd(2000) }, () => rnd(256)));
      if (i % 6 === 1) junk[0] = 22; // looks like TLS
      sock.end(junk);
      await readAll(sock, 2000); // every kind of connection ends: refused, answered, or piped and closed
    }
    assert.equal((await dnsQuery(b.socketPath, 'api.test', 'A'))?.answers[0]?.address, ip);
  });
});

describe('DNS over TCP (port 53)', { timeout: 20_000 }, () => {
  it('answers several queries on one connection, in order, each recorded; then closes when the client ends', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 443 }] });
    const sock = await relay(b.socketPath, 'tcp 127.0.0.1 53 dial\n');
    const framed = (id: number, name: string, qtype: string) => {
      const q = buildQuery(id, name, qtypeNumber(qtype)!);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.length);
      return Buffer.concat([len, q]);
    };
    // Three queries in one write, as a resolver that pipelines sends them.
    sock.write(Buffer.concat([framed(1, 'web.test', 'A'), framed(2, 'web.test', 'AAAA'), framed(3, 'evil.test', 'A')]));
    const reply = await within(
      new Promise<Buffer>((resolve) => {
        let got = Buffer.alloc(0);
        sock.on('data', (d: Buffer) => {
          got = Buffer.concat([got, d]);
          // "pipe\n", then three framed answers.
          let p = 5;
          for (let i = 0; i < 3 && p + 2 <= got.length; i++) p += 2 + got.readUInt16BE(p);
          if (got.length >= p && got.subarray(0, 5).toString() === 'pipe\n' && b.events.length >= 3) resolve(got);
        });
      }),
      'three answers',
    );
    const answers: Array<{ id: number; rcode: number; an: number }> = [];
    for (let p = 5; p < reply.length; ) {
      const len = reply.readUInt16BE(p);
      const m = reply.subarray(p + 2, p + 2 + len);
      answers.push({ id: m.readUInt16BE(0), rcode: m.readUInt16BE(2) & 0xf, an: m.readUInt16BE(6) });
      p += 2 + len;
    }
    assert.deepEqual(answers, [
      { id: 1, rcode: 0, an: 1 },
      { id: 2, rcode: 0, an: 0 },
      { id: 3, rcode: 3, an: 0 },
    ]);
    assert.deepEqual(
      b.events.map((e) => `${e.kind} ${e.host} ${e.qtype} ${e.verdict}`),
      ['dns web.test A allow', 'dns web.test AAAA allow', 'dns evil.test A deny'],
    );
    sock.end();
    await closedWithin(sock, 2000);
    assert.equal(b.events.length, 3, 'the connection itself adds no record');
  });
});
