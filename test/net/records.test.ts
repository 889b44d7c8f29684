/**
 * What went out is in the audit log, however the connection ends: a request whose body never
 * finished, a relay count that arrives while the sandbox holds every connection slot, a first
 * message that never completes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressOf, closedWithin, listen, relay, tcpServer, testBroker, within } from './helpers.js';

describe('every request whose head went upstream is recorded', { timeout: 30_000 }, () => {
  for (const dial of [false, true]) {
    it(`a chunked body cut off before its last chunk: recorded with the bytes forwarded and a note (${dial ? 'relay can dial' : 'relay cannot dial'})`, async () => {
      let got = 0;
      // As servers do: a client's EOF in the middle of a body ends the exchange.
      const server = tcpServer((s) => s.on('data', (d: Buffer) => (got += d.length)).on('end', () => s.end()));
      const port = await listen(server);
      const b = await testBroker({ allow: [{ host: 'web.test', port }] });
      const ip = await addressOf(b, 'web.test');
      const sock = await relay(b.socketPath, `tcp ${ip} ${port}${dial ? ' dial' : ''}\n`);
      const head = `POST /unfinished-path?q=1 HTTP/1.1\r\nHost: web.test:${port}\r\nTransfer-Encoding: chunked\r\n\r\n`;
      sock.write(head);
      const chunk = `10\r\n${'A'.repeat(16)}\r\n`;
      for (let i = 0; i < 5; i++) {
        sock.write(chunk);
        await new Promise((r) => setTimeout(r, 20));
      }
      const sent = head.length + 5 * chunk.length;
      await within(
        new Promise<void>((r) => {
          const t = setInterval(() => got >= sent && (clearInterval(t), r()), 10);
        }),
        'the server receiving the head and chunks',
      );
      sock.end();
      const rec = await b.event((e) => e.kind === 'http');
      assert.equal(rec.verdict, 'allow');
      assert.equal(rec.method, 'POST');
      assert.equal(rec.path, '/unfinished-path');
      assert.equal(rec.bytes_out, sent);
      assert.match(rec.note ?? '', /closed before the request's body ended/);
      const conn = await b.event((e) => e.kind === 'connect');
      assert.equal(conn.bytes_out, sent);
      assert.ok(b.events.indexOf(rec) < b.events.indexOf(conn), 'the request before its connection');
    });
  }

  it('a Content-Length body cut off when the broker closes (end of the run): recorded too', async () => {
    const server = tcpServer(() => {});
    const port = await listen(server);
    const b = await testBroker({ allow: [{ host: 'web.test', port }] });
    const ip = await addressOf(b, 'web.test');
    const sock = await relay(b.socketPath, `tcp ${ip} ${port}\n`);
    const head = `PUT /up HTTP/1.1\r\nHost: web.test:${port}\r\nContent-Length: 1000\r\n\r\n`;
    sock.write(head + 'x'.repeat(10));
    await new Promise((r) => setTimeout(r, 200));
    await b.broker.close();
    const rec = b.events.find((e) => e.kind === 'http');
    assert.ok(rec, JSON.stringify(b.events));
    assert.equal(rec.bytes_out, head.length + 10);
    assert.match(rec.note ?? '', /closed before/);
  });
});

/** The broker's lines to a fake relay that can dial, as they come. */
function said(sock: import('node:net').Socket) {
  let text = '';
  sock.on('data', (d: Buffer) => (text += d.toString('latin1')));
  return (re: RegExp, what: string) =>
    within(
      new Promise<RegExpExecArray>((resolve) => {
        const t = setInterval(() => {
          const m = re.exec(text);
          if (m) {
            clearInterval(t);
            resolve(m);
          }
        }, 5);
      }),
      `${what} (so far ${JSON.stringify(text)})`,
    );
}

describe("the relay's byte count always gets in", { timeout: 30_000 }, () => {
  it('a "done" line is taken while the sandbox holds every connection slot: the record has the relay\'s counts', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 8080 }], resolve: async () => '192.0.2.10', maxConnections: 4 });
    const ip = await addressOf(b, 'web.test');
    const sock = await relay(b.socketPath, `tcp ${ip} 8080 dial\n`);
    const wait = said(sock);
    sock.write('SSH-2.0-client\r\n');
    const id = (await wait(/^dial (\d+) /, 'dial'))[1]!;
    await wait(/\npass 0\n/, 'pass');
    // The sandbox fills the other slots: idle connections to the proxy port, and one more that is refused.
    const holders = await Promise.all(Array.from({ length: 4 }, () => relay(b.socketPath, 'tcp 127.0.0.1 3128\n')));
    await b.event((e) => e.reason === 'overload');
    const done = await relay(b.socketPath, `done ${id} 2097157 42 -\n`);
    done.end();
    sock.end();
    const rec = await b.event((e) => e.kind === 'connect' && e.host === 'web.test');
    assert.equal(rec.verdict, 'allow');
    assert.equal(rec.bytes_out, 2097157);
    assert.equal(rec.bytes_in, 42);
    assert.equal(rec.note, undefined, JSON.stringify(rec));
    for (const h of holders) h.destroy();
  });

  for (const via of ['raw', 'connect'] as const) {
    it(`a first message begun and never finished (half a TLS ClientHello${via === 'connect' ? ', in a CONNECT tunnel' : ''}) is refused after the timeout, and recorded`, async () => {
      const b = await testBroker({ allow: [{ host: 'web.test', port: 443 }], resolve: async () => '192.0.2.10', firstMessageTimeoutMs: 300 });
      const ip = await addressOf(b, 'web.test');
      const sock = await relay(b.socketPath, via === 'raw' ? `tcp ${ip} 443 dial\n` : 'tcp 127.0.0.1 3128 dial\n');
      const wait = said(sock);
      if (via === 'connect') sock.write('CONNECT web.test:443 HTTP/1.1\r\nHost: web.test:443\r\n\r\n');
      sock.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
      await wait(/^dial /, 'dial');
      await closedWithin(sock, 3000);
      const rec = await b.event((e) => e.host === 'web.test' && e.kind !== 'dns');
      assert.equal(rec.verdict, 'deny');
      assert.equal(rec.reason, 'first-message-timeout');
    });
  }

  it('a client that has sent nothing is not timed out (a server-first protocol: it waits for the greeting)', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 25 }], resolve: async () => '192.0.2.10', firstMessageTimeoutMs: 200 });
    const ip = await addressOf(b, 'web.test');
    const sock = await relay(b.socketPath, `tcp ${ip} 25 dial\n`);
    const wait = said(sock);
    await wait(/^dial /, 'dial after the first-bytes wait');
    await new Promise((r) => setTimeout(r, 600));
    assert.ok(!sock.readableEnded && !sock.destroyed, 'still open');
    sock.write('EHLO client.test\r\n');
    await wait(/\npass 0\n/, 'pass');
    sock.destroy();
  });
});

describe("the relay's own refusals and its end reach the record", { timeout: 30_000 }, () => {
  it('"over": a connection the relay refused at its fd cap is recorded as overload, not counted against the broker\'s cap', async () => {
    const b = await testBroker({ maxConnections: 1 });
    for (let i = 0; i < 3; i++) (await relay(b.socketPath, 'over 127.0.0.1 8080\n')).end();
    await b.event((e) => b.events.filter((x) => x.reason === 'overload').length === 3 && e.reason === 'overload');
    const rec = b.events.find((e) => e.reason === 'overload')!;
    assert.equal(rec.verdict, 'deny');
    assert.equal(rec.host, '127.0.0.1');
    assert.equal(rec.port, 8080);
    assert.match(rec.note ?? '', /relay's connection cap/);
    // The broker's one slot is still free: a DNS query over TCP is answered, not refused as overload.
    const dns = await relay(b.socketPath, 'tcp 127.0.0.1 53\n');
    dns.end();
    await closedWithin(dns, 3000);
    assert.equal(b.events.filter((e) => e.reason === 'overload').length, 3, JSON.stringify(b.events));
  });

  it('"exit": the relay\'s last words go to the embedder (Ward reports the lost network); malformed ones are refused', async () => {
    const said: string[] = [];
    const b = await testBroker({ onRelayExit: (why) => said.push(why) });
    (await relay(b.socketPath, 'exit poll EINVAL\n')).end();
    const bad = await relay(b.socketPath, 'exit poll\x1b[2K EINVAL\n');
    await b.event((e) => e.reason === 'malformed');
    bad.destroy();
    await within(
      new Promise<void>((r) => {
        const t = setInterval(() => said.length > 0 && (clearInterval(t), r()), 5);
      }),
      'the relay\'s exit reaching onRelayExit',
    );
    assert.deepEqual(said, ['poll: EINVAL']);
  });
});
